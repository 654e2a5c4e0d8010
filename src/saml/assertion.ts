/**
 * Building a SAML 2.0 Assertion (SAML core section 2.3.3) as a DOM, ready for `signAssertion`.
 *
 * Every value a caller gives is set with `setAttribute` or `textContent`, never spliced into markup, so a `<`, an
 * `&` or a `]]>` in a subject name or an attribute value stays text. Values carrying characters XML cannot hold at
 * all (NUL, most C0 controls, lone surrogates) are refused rather than silently dropped. The children follow the
 * schema order, leaving the Signature's place (right after Issuer) empty:
 *
 * ```xml
 * <saml:Assertion ID IssueInstant Version="2.0">
 *   <saml:Issuer/>
 *   <saml:Subject> NameID, SubjectConfirmation (bearer or holder-of-key) </saml:Subject>
 *   <saml:Conditions NotBefore NotOnOrAfter> AudienceRestriction </saml:Conditions>
 *   <saml:AuthnStatement/>      when authnInstant is given
 *   <saml:AttributeStatement/>  when there are attributes
 * </saml:Assertion>
 * ```
 *
 * Times are xs:dateTime in UTC with `Z` and whole seconds, as SAML core section 1.3.3 asks.
 */
import { DOMImplementation } from '@xmldom/xmldom';
import { KeymeshError } from '../errors.js';
import { keyValueElement } from './key-value.js';
import {
  ATTRNAME_FORMAT_UNSPECIFIED,
  ATTRNAME_FORMAT_URI,
  AUTHN_CONTEXT_UNSPECIFIED,
  CM_BEARER,
  CM_HOLDER_OF_KEY,
  DS_NS,
  SAML2_ASSERTION_NS as SAML,
  XMLNS_NS,
  XS_NS,
  XSI_NS,
} from './names.js';

/** What one assertion says. Times are seconds since the epoch. */
export interface AssertionContent {
  /** The assertion's `ID`: an NCName (starts with a letter or `_`), e.g. `_` and a UUID's hex digits. */
  readonly id: string;
  /** The issuing realm's entity ID. */
  readonly issuer: string;
  readonly issueInstant: number;
  readonly subject: { readonly nameId: string; readonly format?: string };
  readonly notBefore: number;
  readonly notOnOrAfter: number;
  /** One AudienceRestriction with one Audience each; none when empty. */
  readonly audiences: readonly string[];
  /**
   * One Attribute each. A string, number or boolean is one AttributeValue typed `xs:string`, `xs:integer`,
   * `xs:double` or `xs:boolean`; an array is one value for each element; an object is its JSON text. `null` and
   * `undefined` are left out; no AttributeStatement is written when nothing is left.
   */
  readonly attributes: Readonly<Record<string, unknown>>;
  /** Bearer, or holder-of-key of `publicKey` (an RSA or EC public JWK) written as a `ds:KeyValue`. */
  readonly confirmation:
    | { readonly method: 'bearer' }
    | { readonly method: 'holder-of-key'; readonly publicKey: JsonWebKey };
  /** When given, an AuthnStatement with this AuthnInstant and an unspecified context. */
  readonly authnInstant?: number;
}

const NCNAME = /^[A-Za-z_][A-Za-z0-9._-]*$/;
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;
const URI_LIKE = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/**
 * Builds the unsigned assertion `content` describes.
 * @throws KeymeshError `ERR_INVALID_REQUEST` when a value holds characters XML cannot carry or the holder-of-key
 *   key is not an RSA or EC public key; `ERR_INTERNAL` when `id` is not an NCName or a time is not a number.
 */
export function buildAssertion(content: AssertionContent): Document {
  if (!NCNAME.test(content.id)) throw new KeymeshError('ERR_INTERNAL', 'a SAML assertion ID must be an NCName');
  const doc = new DOMImplementation().createDocument(SAML, 'saml:Assertion', null) as unknown as Document;
  const root = doc.documentElement;
  root.setAttributeNS(XMLNS_NS, 'xmlns:saml', SAML);
  root.setAttributeNS(XMLNS_NS, 'xmlns:xs', XS_NS);
  root.setAttributeNS(XMLNS_NS, 'xmlns:xsi', XSI_NS);
  root.setAttribute('ID', content.id);
  root.setAttribute('Version', '2.0');
  root.setAttribute('IssueInstant', instant(content.issueInstant));
  setText(add(root, 'Issuer'), content.issuer, 'an issuer');
  addSubject(root, content);
  addConditions(root, content);
  if (content.authnInstant !== undefined) {
    const authn = add(root, 'AuthnStatement');
    authn.setAttribute('AuthnInstant', instant(content.authnInstant));
    add(add(authn, 'AuthnContext'), 'AuthnContextClassRef').textContent = AUTHN_CONTEXT_UNSPECIFIED;
  }
  addAttributes(root, content.attributes);
  return doc;
}

function addSubject(root: Element, content: AssertionContent): void {
  const subject = add(root, 'Subject');
  const nameId = add(subject, 'NameID');
  if (content.subject.format !== undefined) setAttr(nameId, 'Format', content.subject.format, 'a NameID format');
  setText(nameId, content.subject.nameId, 'a subject');
  const confirmation = add(subject, 'SubjectConfirmation');
  const data = add(confirmation, 'SubjectConfirmationData');
  data.setAttribute('NotOnOrAfter', instant(content.notOnOrAfter));
  if (content.confirmation.method === 'bearer') {
    confirmation.setAttribute('Method', CM_BEARER);
    const [only, ...others] = content.audiences;
    if (only !== undefined && others.length === 0) setAttr(data, 'Recipient', only, 'an audience');
  } else {
    confirmation.setAttribute('Method', CM_HOLDER_OF_KEY);
    data.setAttributeNS(XSI_NS, 'xsi:type', 'saml:KeyInfoConfirmationDataType');
    const keyInfo = data.appendChild(root.ownerDocument.createElementNS(DS_NS, 'ds:KeyInfo'));
    keyInfo.appendChild(keyValueElement(root.ownerDocument, content.confirmation.publicKey));
  }
}

function addConditions(root: Element, content: AssertionContent): void {
  const conditions = add(root, 'Conditions');
  conditions.setAttribute('NotBefore', instant(content.notBefore));
  conditions.setAttribute('NotOnOrAfter', instant(content.notOnOrAfter));
  if (content.audiences.length === 0) return;
  const restriction = add(conditions, 'AudienceRestriction');
  for (const audience of content.audiences) setText(add(restriction, 'Audience'), audience, 'an audience');
}

function addAttributes(root: Element, attributes: Readonly<Record<string, unknown>>): void {
  const written: Array<[string, Array<[string, string]>]> = [];
  for (const [name, value] of Object.entries(attributes)) {
    const values = (Array.isArray(value) ? value : [value]).flatMap(typed);
    if (values.length > 0) written.push([name, values]);
  }
  if (written.length === 0) return;
  const statement = add(root, 'AttributeStatement');
  for (const [name, values] of written) {
    const attribute = add(statement, 'Attribute');
    setAttr(attribute, 'Name', name, 'an attribute name');
    attribute.setAttribute('NameFormat', URI_LIKE.test(name) ? ATTRNAME_FORMAT_URI : ATTRNAME_FORMAT_UNSPECIFIED);
    for (const [type, text] of values) {
      const element = add(attribute, 'AttributeValue');
      element.setAttributeNS(XSI_NS, 'xsi:type', type);
      setText(element, text, 'an attribute value');
    }
  }
}

/** The xsi:type and text of one attribute value; none for null and undefined. */
function typed(value: unknown): Array<[string, string]> {
  switch (typeof value) {
    case 'string':
      return [['xs:string', value]];
    case 'boolean':
      return [['xs:boolean', String(value)]];
    case 'bigint':
      return [['xs:integer', String(value)]];
    case 'number':
      if (Number.isInteger(value)) return [['xs:integer', String(value)]];
      if (Number.isFinite(value)) return [['xs:double', String(value)]];
      return [['xs:double', Number.isNaN(value) ? 'NaN' : value > 0 ? 'INF' : '-INF']];
    default: {
      const json = value === null ? undefined : JSON.stringify(value);
      return json === undefined ? [] : [['xs:string', json]];
    }
  }
}

/** `seconds` since the epoch as an xs:dateTime in UTC without fractional seconds. */
function instant(seconds: number): string {
  if (!Number.isFinite(seconds)) throw new KeymeshError('ERR_INTERNAL', 'a SAML assertion time must be a number');
  return new Date(Math.floor(seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function add(parent: Element, localName: string): Element {
  return parent.appendChild(parent.ownerDocument.createElementNS(SAML, `saml:${localName}`));
}

function setText(element: Element, value: string, what: string): void {
  element.textContent = xmlSafe(value, what);
}

function setAttr(element: Element, name: string, value: string, what: string): void {
  element.setAttribute(name, xmlSafe(value, what));
}

function xmlSafe(value: string, what: string): string {
  if (typeof value !== 'string' || NOT_XML_CHAR.test(value))
    throw new KeymeshError('ERR_INVALID_REQUEST', `a SAML assertion cannot carry ${what} with characters XML forbids`);
  return value;
}
