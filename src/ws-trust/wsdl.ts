/**
 * The WSDL 1.1 description of the endpoint: WS-Trust 1.3's SecurityTokenService port type (Issue, Validate,
 * Renew, Cancel, each with its WS-Addressing actions as in the OASIS ws-trust-1.3.wsdl), a document/literal SOAP
 * 1.1 binding and a SOAP 1.2 binding with those actions as soapAction, and one service with a port per binding at
 * the endpoint's address.
 *
 * The types section holds a small schema of the WS-Trust elements: the request's common children are declared
 * (so WSDL-driven clients such as the npm `soap` package write them in the wst namespace), everything else stays
 * open (`xs:any`), as in the OASIS schema. The document is built with DOM calls; the address is the only value
 * from outside and is set as an attribute.
 */
import { DOMImplementation } from '@xmldom/xmldom';
import { serializeDocument } from './dom.js';
import { OPERATIONS, WSA_NS, WSP_NS, WST_NS, XMLNS_NS } from './names.js';

const WSDL_NS = 'http://schemas.xmlsoap.org/wsdl/';
const WSDL_SOAP11_NS = 'http://schemas.xmlsoap.org/wsdl/soap/';
const WSDL_SOAP12_NS = 'http://schemas.xmlsoap.org/wsdl/soap12/';
const WSAM_NS = 'http://www.w3.org/2007/05/addressing/metadata';
const XS_NS = 'http://www.w3.org/2001/XMLSchema';
/** Target namespace of the WSDL, as in the OASIS WSDL of WS-Trust 1.3. */
const TNS = `${WST_NS}/wsdl`;
const SOAP_HTTP_TRANSPORT = 'http://schemas.xmlsoap.org/soap/http';

const PREFIX_OF: Readonly<Record<string, string>> = {
  [WSDL_NS]: 'wsdl',
  [WSDL_SOAP11_NS]: 'soap',
  [WSDL_SOAP12_NS]: 'soap12',
  [WSAM_NS]: 'wsam',
  [XS_NS]: 'xs',
};

/** The request children the schema declares, in order: `[name, type]`, or `[ref]` to an element of another schema. */
const RST_CHILDREN: ReadonlyArray<readonly [string, string?]> = [
  ['TokenType', 'xs:anyURI'],
  ['RequestType', 'xs:anyURI'],
  ['wsp:AppliesTo'],
  ['KeyType', 'xs:anyURI'],
  ['KeySize', 'xs:unsignedInt'],
  ['ComputedKeyAlgorithm', 'xs:anyURI'],
];

type Attributes = Readonly<Record<string, string>>;

function add(parent: Element, ns: string, localName: string, attributes: Attributes = {}): Element {
  const element = parent.ownerDocument.createElementNS(ns, `${PREFIX_OF[ns]}:${localName}`);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith('wsam:')) element.setAttributeNS(WSAM_NS, name, value);
    else element.setAttribute(name, value);
  }
  parent.appendChild(element);
  return element;
}

/** wsp:AppliesTo holding a wsa:EndpointReference with its Address: the one shape keymesh reads. */
function writeAppliesToSchemas(types: Element): void {
  const wsa = add(types, XS_NS, 'schema', { targetNamespace: WSA_NS, elementFormDefault: 'qualified' });
  const epr = add(add(wsa, XS_NS, 'element', { name: 'EndpointReference' }), XS_NS, 'complexType');
  add(add(epr, XS_NS, 'sequence'), XS_NS, 'element', { name: 'Address', type: 'xs:anyURI' });
  const wsp = add(types, XS_NS, 'schema', { targetNamespace: WSP_NS, elementFormDefault: 'qualified' });
  add(wsp, XS_NS, 'import', { namespace: WSA_NS });
  const appliesTo = add(add(wsp, XS_NS, 'element', { name: 'AppliesTo' }), XS_NS, 'complexType');
  add(add(appliesTo, XS_NS, 'sequence'), XS_NS, 'element', { ref: 'wsa:EndpointReference' });
}

function writeSchema(types: Element): void {
  writeAppliesToSchemas(types);
  const schema = add(types, XS_NS, 'schema', { targetNamespace: WST_NS, elementFormDefault: 'qualified' });
  add(schema, XS_NS, 'import', { namespace: WSP_NS });
  add(schema, XS_NS, 'element', { name: 'RequestSecurityToken', type: 'wst:RequestSecurityTokenType' });
  const rst = add(schema, XS_NS, 'complexType', { name: 'RequestSecurityTokenType' });
  const sequence = add(rst, XS_NS, 'sequence');
  for (const [name, type] of RST_CHILDREN)
    add(sequence, XS_NS, 'element', type ? { name, type, minOccurs: '0' } : { ref: name, minOccurs: '0' });
  add(sequence, XS_NS, 'any', { namespace: '##any', processContents: 'lax', minOccurs: '0', maxOccurs: 'unbounded' });
  add(rst, XS_NS, 'attribute', { name: 'Context', type: 'xs:anyURI', use: 'optional' });
  add(schema, XS_NS, 'element', { name: 'RequestSecurityTokenResponse', type: 'wst:RequestSecurityTokenResponseType' });
  const rstr = add(schema, XS_NS, 'complexType', { name: 'RequestSecurityTokenResponseType' });
  const open = add(rstr, XS_NS, 'sequence');
  add(open, XS_NS, 'any', { namespace: '##any', processContents: 'lax', minOccurs: '0', maxOccurs: 'unbounded' });
  add(rstr, XS_NS, 'attribute', { name: 'Context', type: 'xs:anyURI', use: 'optional' });
  const collection = add(schema, XS_NS, 'element', { name: 'RequestSecurityTokenResponseCollection' });
  const items = add(add(collection, XS_NS, 'complexType'), XS_NS, 'sequence');
  add(items, XS_NS, 'element', { ref: 'wst:RequestSecurityTokenResponse', minOccurs: '1', maxOccurs: 'unbounded' });
}

function writeMessages(definitions: Element): void {
  const messages: ReadonlyArray<readonly [string, string]> = [
    ['RequestSecurityTokenMsg', 'RequestSecurityToken'],
    ['RequestSecurityTokenResponseMsg', 'RequestSecurityTokenResponse'],
    ['RequestSecurityTokenResponseCollectionMsg', 'RequestSecurityTokenResponseCollection'],
  ];
  for (const [name, element] of messages) {
    const message = add(definitions, WSDL_NS, 'message', { name });
    add(message, WSDL_NS, 'part', { name: 'body', element: `wst:${element}` });
  }
}

function writeBinding(definitions: Element, name: string, soapNs: string): void {
  const binding = add(definitions, WSDL_NS, 'binding', { name, type: 'tns:SecurityTokenService' });
  add(binding, soapNs, 'binding', { style: 'document', transport: SOAP_HTTP_TRANSPORT });
  for (const op of OPERATIONS) {
    const operation = add(binding, WSDL_NS, 'operation', { name: op.name });
    add(operation, soapNs, 'operation', { soapAction: op.requestAction, style: 'document' });
    add(add(operation, WSDL_NS, 'input'), soapNs, 'body', { use: 'literal' });
    add(add(operation, WSDL_NS, 'output'), soapNs, 'body', { use: 'literal' });
  }
}

/**
 * The WSDL of the endpoint at `address` (SOAP 1.1 and 1.2 bindings of WS-Trust 1.3's SecurityTokenService port
 * type with Issue/Validate/Renew/Cancel operations).
 */
export function wsdl(address: string): string {
  const doc = new DOMImplementation().createDocument(WSDL_NS, 'wsdl:definitions', null) as unknown as Document;
  const definitions = doc.documentElement;
  definitions.setAttribute('name', 'SecurityTokenService');
  definitions.setAttribute('targetNamespace', TNS);
  for (const [prefix, ns] of [
    ['tns', TNS],
    ['wst', WST_NS],
    ['wsp', WSP_NS],
    ['wsa', WSA_NS],
    ['xs', XS_NS],
    ['soap', WSDL_SOAP11_NS],
    ['soap12', WSDL_SOAP12_NS],
    ['wsam', WSAM_NS],
  ] as const) {
    definitions.setAttributeNS(XMLNS_NS, `xmlns:${prefix}`, ns);
  }
  writeSchema(add(definitions, WSDL_NS, 'types'));
  writeMessages(definitions);
  const portType = add(definitions, WSDL_NS, 'portType', { name: 'SecurityTokenService' });
  for (const op of OPERATIONS) {
    const operation = add(portType, WSDL_NS, 'operation', { name: op.name });
    const output =
      op.name === 'Issue' ? 'RequestSecurityTokenResponseCollectionMsg' : 'RequestSecurityTokenResponseMsg';
    add(operation, WSDL_NS, 'input', { message: 'tns:RequestSecurityTokenMsg', 'wsam:Action': op.requestAction });
    add(operation, WSDL_NS, 'output', { message: `tns:${output}`, 'wsam:Action': op.responseAction });
  }
  writeBinding(definitions, 'SecurityTokenService_Soap11', WSDL_SOAP11_NS);
  writeBinding(definitions, 'SecurityTokenService_Soap12', WSDL_SOAP12_NS);
  const service = add(definitions, WSDL_NS, 'service', { name: 'SecurityTokenService' });
  const soap11 = add(service, WSDL_NS, 'port', {
    name: 'SecurityTokenService_Soap11',
    binding: 'tns:SecurityTokenService_Soap11',
  });
  add(soap11, WSDL_SOAP11_NS, 'address', { location: address });
  const soap12 = add(service, WSDL_NS, 'port', {
    name: 'SecurityTokenService_Soap12',
    binding: 'tns:SecurityTokenService_Soap12',
  });
  add(soap12, WSDL_SOAP12_NS, 'address', { location: address });
  return serializeDocument(doc);
}
