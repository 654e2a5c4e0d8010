/**
 * The SOAP layer: which version a request speaks, reading its envelope, and making the envelope of the answer.
 *
 * The version comes from the Content-Type, as the two HTTP bindings define it: `text/xml` is SOAP 1.1 (action in
 * the SOAPAction header), `application/soap+xml` is SOAP 1.2 (action in the `action` parameter); the envelope's
 * namespace must agree. The answer is always in the request's version. An envelope is `Header?` then `Body`, and
 * the body holds exactly one element. A header block marked `mustUnderstand` that keymesh does not process (it
 * processes wsse:Security and WS-Addressing 1.0) is refused as SOAP says; header roles/actors are not examined,
 * keymesh being the ultimate receiver of every block.
 */
import { child, childElements, parseXml, text } from '../xml/parse.js';
import { append, newDocument, prefixOf, setAttribute } from './dom.js';
import { FAULT, WsTrustFault } from './fault.js';
import { SOAP11_NS, SOAP12_NS, WSA_NS, WSSE_NS, WST_NS, WSU_NS, XMLNS_NS } from './names.js';
import { MAX_URI_CHARS } from './values.js';

/** One SOAP version: its envelope namespace and the Content-Type of its answers. */
export interface SoapVersion {
  readonly name: '1.1' | '1.2';
  readonly ns: string;
  readonly contentType: string;
}

export const SOAP_1_1: SoapVersion = { name: '1.1', ns: SOAP11_NS, contentType: 'text/xml; charset=utf-8' };
export const SOAP_1_2: SoapVersion = { name: '1.2', ns: SOAP12_NS, contentType: 'application/soap+xml; charset=utf-8' };

const PARAMETER = /;\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;

/** Removes the quotes of an HTTP quoted string (a SOAPAction header, a Content-Type parameter). */
export function unquote(value: string): string {
  const v = value.trim();
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v;
}

/**
 * The SOAP version a Content-Type names and, for SOAP 1.2, its `action` parameter; undefined when the type is
 * neither `text/xml` nor `application/soap+xml`.
 */
export function soapVersionOf(
  contentType: string | undefined,
): { readonly version: SoapVersion; readonly action?: string } | undefined {
  if (contentType === undefined) return undefined;
  const type = contentType.split(';', 1)[0]!.trim().toLowerCase();
  if (type === 'text/xml') return { version: SOAP_1_1 };
  if (type !== 'application/soap+xml') return undefined;
  for (const [, name, value] of contentType.matchAll(PARAMETER)) {
    if (name!.toLowerCase() === 'action') return { version: SOAP_1_2, action: unquote(value!) };
  }
  return { version: SOAP_1_2 };
}

/** What the binding needs of a request envelope. */
export interface SoapRequest {
  /** The `Header` element, when there is one. */
  readonly header: Element | undefined;
  /** The `Body` element: the node a signed request's signature must reference, and the one the request is read from. */
  readonly body: Element;
  /** The one element of the `Body`. */
  readonly payload: Element;
  /** wsa:MessageID, to be answered with wsa:RelatesTo. */
  readonly messageId: string | undefined;
  /** wsa:Action. */
  readonly action: string | undefined;
}

/**
 * Parses (hardened, at most `maxBytes`) and checks a request envelope of `version`.
 * @throws KeymeshError `ERR_INVALID_XML` from the parser; WsTrustFault `wst:InvalidRequest` for an envelope of
 *   another version or shape, `MustUnderstand` for a header block keymesh must understand but does not.
 */
export function readEnvelope(body: string, version: SoapVersion, maxBytes: number | undefined): SoapRequest {
  const doc = parseXml(body, maxBytes === undefined ? {} : { maxBytes });
  const envelope = doc.documentElement;
  if (envelope.localName !== 'Envelope' || envelope.namespaceURI !== version.ns)
    throw new WsTrustFault(FAULT.InvalidRequest, `the document is not a SOAP ${version.name} envelope`);
  const parts = childElements(envelope);
  const header = parts.length === 2 ? parts[0] : undefined;
  const bodyElement = parts[parts.length - 1];
  const shaped =
    (parts.length === 1 || (parts.length === 2 && isSoap(header!, version, 'Header'))) &&
    isSoap(bodyElement!, version, 'Body');
  if (!shaped) throw new WsTrustFault(FAULT.InvalidRequest, 'the envelope must hold an optional Header, then a Body');
  const payload = childElements(bodyElement!);
  if (payload.length !== 1)
    throw new WsTrustFault(FAULT.InvalidRequest, 'the SOAP Body must hold exactly one wst:RequestSecurityToken');
  if (header) checkMustUnderstand(header, version);
  return {
    header,
    body: bodyElement!,
    payload: payload[0]!,
    messageId: header ? addressingValue(header, 'MessageID') : undefined,
    action: header ? addressingValue(header, 'Action') : undefined,
  };
}

function isSoap(element: Element, version: SoapVersion, localName: string): boolean {
  return element.namespaceURI === version.ns && element.localName === localName;
}

function checkMustUnderstand(header: Element, version: SoapVersion): void {
  for (const block of childElements(header)) {
    const flag = block.getAttributeNS(version.ns, 'mustUnderstand')?.trim();
    const understood =
      block.namespaceURI === WSA_NS || (block.namespaceURI === WSSE_NS && block.localName === 'Security');
    if ((flag === '1' || flag === 'true') && !understood)
      throw new WsTrustFault(FAULT.MustUnderstand, 'a header block marked mustUnderstand is not processed by keymesh');
  }
}

function addressingValue(header: Element, localName: string): string | undefined {
  const element = child(header, WSA_NS, localName);
  if (!element) return undefined;
  const value = text(element);
  if (value.length === 0 || value.length > MAX_URI_CHARS)
    throw new WsTrustFault(
      FAULT.InvalidRequest,
      `wsa:${localName} must be a URI of at most ${MAX_URI_CHARS} characters`,
    );
  return value;
}

/**
 * A new answer envelope of `version`; with `addressing`, its header carries wsa:Action and wsa:RelatesTo.
 * Returns the document and its (empty) `Body`.
 */
export function newEnvelope(
  version: SoapVersion,
  addressing?: { readonly action: string; readonly relatesTo: string },
): { readonly doc: Document; readonly body: Element } {
  const doc = newDocument(version.ns, 'Envelope');
  const envelope = doc.documentElement;
  // declared once here rather than on every element that uses them
  for (const ns of [WST_NS, WSSE_NS, WSU_NS, WSA_NS]) envelope.setAttributeNS(XMLNS_NS, `xmlns:${prefixOf(ns)}`, ns);
  if (addressing) {
    const header = append(envelope, version.ns, 'Header');
    append(header, WSA_NS, 'Action', addressing.action);
    const relatesTo = append(header, WSA_NS, 'RelatesTo', addressing.relatesTo);
    setAttribute(relatesTo, null, 'RelationshipType', `${WSA_NS}/reply`);
  }
  return { doc, body: append(envelope, version.ns, 'Body') };
}
