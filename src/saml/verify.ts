/**
 * Verifying a signed SAML 2.0 assertion, with the defences signature-wrapping attacks call for: verify exactly
 * what is used, and use only what was verified.
 *
 * 1. **Shape before crypto.** The document (hardened `parseXml`: no DTD, bounded) must be a `saml:Assertion`
 *    whose ID appears on no other element, carrying exactly one `ds:Signature` in the whole document, a direct
 *    child of the assertion, laid out as SignedInfo, SignatureValue, KeyInfo?. SignedInfo holds exclusive C14N,
 *    an accepted signature method and exactly one Reference whose URI is `#` + the assertion's ID, with at most
 *    two transforms (enveloped-signature, exclusive C14N last) and a SHA-256 digest. SHA-1, HMAC, inclusive C14N
 *    or any other algorithm is refused, and xml-crypto's registries are narrowed to the accepted ones as well.
 * 2. **Trusted keys only.** The keys come from `options.keys(kid)`, kid being KeyInfo's KeyName; a key or
 *    certificate carried in the document is never used (xml-crypto's `getCertFromKeyInfo` answers null). An RSA
 *    method is tried only with RSA keys and ECDSA only with EC keys.
 * 3. **Read the signed bytes.** After `checkSignature` succeeds, the assertion is read from the canonical XML of
 *    the signed reference (`getSignedReferences()`), parsed again with `parseXml`, never from the original tree:
 *    whatever was added around or inside the signed element is simply not there.
 * 4. **Then the SAML checks** on that content: Issuer, IssueInstant, Conditions NotBefore/NotOnOrAfter (required)
 *    with the clock skew, every AudienceRestriction naming an expected audience, a Subject with a NameID, and a
 *    bearer or holder-of-key SubjectConfirmation whose data, when timed, is still valid.
 *
 * Every refusal is `ERR_INVALID_TOKEN` (or `ERR_INVALID_XML` from the parser) with a message saying why.
 */
import type { KeyObject } from 'node:crypto';
import { SignedXml } from 'xml-crypto';
import { KeymeshError } from '../errors.js';
import { child, childElements, children, parseXml, text } from '../xml/parse.js';
import { jwkOfKeyValue } from './key-value.js';
import {
  ACCEPTED_SIGNATURE_METHODS,
  ACCEPTED_TRANSFORMS,
  CM_BEARER,
  CM_HOLDER_OF_KEY,
  DS_NS,
  ECDSA_SHA256,
  ENVELOPED_SIGNATURE,
  EXC_C14N,
  RSA_SHA256,
  SAML2_ASSERTION_NS as SAML,
  SHA256,
} from './names.js';
import { EcdsaSha256Signature } from './sign.js';

/** How to verify an assertion. */
export interface VerifyAssertionOptions {
  /** Trusted public keys; `kid` is the assertion's KeyName when it has one. Keys from KeyInfo in the document are NEVER used. */
  readonly keys: (kid: string | undefined) => readonly KeyObject[];
  /** The Issuer the assertion must name. */
  readonly issuer: string;
  /** The current time, ms since the epoch. */
  readonly now: number;
  /** Seconds of clock difference tolerated on every time bound. */
  readonly clockSkewS: number;
  /** When given, the assertion must name at least one of these in each of its AudienceRestrictions (and have one). */
  readonly audiences?: readonly string[];
  /** Largest document accepted, in bytes. Default is `XML_MAX_BYTES` (256 KiB). */
  readonly maxBytes?: number;
}

/** What a verified assertion says; times are seconds since the epoch. */
export interface VerifiedAssertion {
  readonly id: string;
  readonly issuer: string;
  readonly issueInstant: number;
  readonly subject: { nameId: string; format?: string };
  readonly notBefore?: number;
  readonly notOnOrAfter: number;
  /** Every Audience of every AudienceRestriction. */
  readonly audiences: readonly string[];
  /** The text of each AttributeValue, by Attribute Name. */
  readonly attributes: Readonly<Record<string, readonly string[]>>;
  /** The first bearer or holder-of-key confirmation; `publicKey` when its KeyInfo holds an RSA or EC KeyValue. */
  readonly confirmation: { method: 'bearer' } | { method: 'holder-of-key'; publicKey?: JsonWebKey };
}

const ID_ATTRIBUTES = ['ID', 'Id', 'id'];
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?Z$/;

/** What the shape checks found: the Signature element, its SignatureMethod and KeyInfo's KeyName. */
type SignatureShape = { readonly element: Element; readonly method: string; readonly kid: string | undefined };

/**
 * Verifies the signed assertion `xml` and returns what it says.
 * @throws KeymeshError `ERR_INVALID_TOKEN` when the assertion is not signed as required, the signature does not
 *   verify with a trusted key, or its issuer, times, audience or subject are not acceptable; `ERR_INVALID_XML`
 *   when the document is refused by the parser.
 */
export function verifyAssertion(xml: string, options: VerifyAssertionOptions): VerifiedAssertion {
  const limits = { maxBytes: options.maxBytes };
  const doc = parseXml(xml, limits);
  const root = assertionRoot(doc);
  const id = root.getAttribute('ID')!;
  const signature = signatureShape(root, id);
  const content = assertionRoot(parseXml(signedContent(xml, signature, options), limits));
  if (content.getAttribute('ID') !== id) throw refused('the signed content is not the assertion');
  return readAssertion(content, options);
}

/**
 * The ID and Issuer of the assertion `xml`, unverified: for choosing keys or dispatching, never for trusting.
 * @throws KeymeshError `ERR_INVALID_TOKEN` when `xml` is not a SAML 2.0 assertion with an ID and an Issuer;
 *   `ERR_INVALID_XML` when the parser refuses it.
 */
export function peekAssertion(xml: string, maxBytes?: number): { id: string; issuer: string } {
  const root = assertionRoot(parseXml(xml, maxBytes === undefined ? {} : { maxBytes }));
  const issuer = identifier(child(root, SAML, 'Issuer'));
  if (!issuer) throw refused('the assertion names no issuer');
  return { id: root.getAttribute('ID')!, issuer };
}

function assertionRoot(doc: Document): Element {
  const root = doc.documentElement;
  if (root.namespaceURI !== SAML || root.localName !== 'Assertion')
    throw refused('the token is not a SAML 2.0 assertion');
  if (!root.getAttribute('ID')) throw refused('the assertion has no ID');
  return root;
}

function signatureShape(root: Element, id: string): SignatureShape {
  const all = elementsOf(root);
  const signatures = all.filter((e) => is(e, DS_NS, 'Signature'));
  if (signatures.length === 0) throw refused('the assertion is not signed');
  if (signatures.length > 1) throw refused('the document carries more than one signature');
  const element = signatures[0]!;
  if (element.parentNode !== root) throw refused('the signature is not a child of the assertion');
  if (all.filter((e) => carriesId(e, id)).length !== 1) throw refused('the assertion ID appears on other elements');
  const [signedInfo, value, keyInfo, ...extra] = childElements(element);
  if (!is(signedInfo, DS_NS, 'SignedInfo') || !is(value, DS_NS, 'SignatureValue') || extra.length > 0)
    throw refused('the signature is not laid out as SignedInfo, SignatureValue, KeyInfo');
  if (keyInfo && !is(keyInfo, DS_NS, 'KeyInfo')) throw refused('the signature carries more than its KeyInfo');
  const [c14n, method, reference, ...more] = childElements(signedInfo!);
  if (!is(c14n, DS_NS, 'CanonicalizationMethod') || !is(method, DS_NS, 'SignatureMethod'))
    throw refused('the signature has no CanonicalizationMethod and SignatureMethod');
  if (!is(reference, DS_NS, 'Reference') || more.length > 0) throw refused('the signature must have one Reference');
  if (c14n!.getAttribute('Algorithm') !== EXC_C14N) throw refused('the signature uses an unaccepted canonicalization');
  // xml-crypto reads the first descendant of each name: a method element with elements inside could hand it another
  if (childElements(method!).length > 0 || childElements(c14n!).some((e) => !isInclusiveNamespaces(e)))
    throw refused('a method of the signature carries elements');
  const signatureMethod = method!.getAttribute('Algorithm') ?? '';
  if (!ACCEPTED_SIGNATURE_METHODS.includes(signatureMethod))
    throw refused('the signature uses an algorithm keymesh does not accept');
  if (reference!.getAttribute('URI') !== `#${id}`) throw refused('the signature does not reference the assertion');
  checkReference(reference!);
  const kid = keyInfo ? identifier(child(keyInfo, DS_NS, 'KeyName')) : undefined;
  return { element, method: signatureMethod, kid: kid || undefined };
}

/** `ec:InclusiveNamespaces`, the one element exclusive C14N takes as a parameter. */
function isInclusiveNamespaces(element: Element): boolean {
  return (
    element.localName === 'InclusiveNamespaces' && element.namespaceURI === 'http://www.w3.org/2001/10/xml-exc-c14n#'
  );
}

function checkReference(reference: Element): void {
  const [transforms, digest, digestValue, ...extra] = childElements(reference);
  const laidOut = is(transforms, DS_NS, 'Transforms') && is(digest, DS_NS, 'DigestMethod');
  if (!laidOut || !is(digestValue, DS_NS, 'DigestValue') || extra.length > 0)
    throw refused('the Reference is not laid out as Transforms, DigestMethod, DigestValue');
  const algorithms = childElements(transforms!).map((t) =>
    is(t, DS_NS, 'Transform') && childElements(t).every(isInclusiveNamespaces)
      ? (t.getAttribute('Algorithm') ?? '')
      : '',
  );
  if (childElements(digest!).length > 0) throw refused('a method of the signature carries elements');
  // xml-crypto appends inclusive C14N after a list that does not end in a canonicalization: exclusive C14N last.
  const distinct = new Set(algorithms).size === algorithms.length;
  if (algorithms.length > 2 || algorithms.at(-1) !== EXC_C14N || !distinct || !algorithms.every(isAcceptedTransform))
    throw refused('the signature uses transforms keymesh does not accept');
  if (digest!.getAttribute('Algorithm') !== SHA256)
    throw refused('the signature uses a digest keymesh does not accept');
}

/** The canonical XML of the signed assertion, once its signature verifies with a trusted key. */
function signedContent(xml: string, signature: SignatureShape, options: VerifyAssertionOptions): string {
  const keyType = signature.method === RSA_SHA256 ? 'rsa' : 'ec';
  const keys = options.keys(signature.kid).filter((key) => key.asymmetricKeyType === keyType);
  let altered = false;
  for (const key of keys) {
    const verifier = new SignedXml({ publicCert: key, getCertFromKeyInfo: () => null });
    verifier.SignatureAlgorithms = {
      [RSA_SHA256]: verifier.SignatureAlgorithms[RSA_SHA256]!,
      [ECDSA_SHA256]: EcdsaSha256Signature,
    };
    verifier.HashAlgorithms = { [SHA256]: verifier.HashAlgorithms[SHA256]! };
    verifier.CanonicalizationAlgorithms = {
      [EXC_C14N]: verifier.CanonicalizationAlgorithms[EXC_C14N]!,
      [ENVELOPED_SIGNATURE]: verifier.CanonicalizationAlgorithms[ENVELOPED_SIGNATURE]!,
    };
    try {
      verifier.loadSignature(signature.element);
      // what xml-crypto is about to run must be what was checked above
      if (verifier.signatureAlgorithm !== signature.method || verifier.canonicalizationAlgorithm !== EXC_C14N)
        throw refused('the signature runs another algorithm than the one it names');
      if (verifier.checkSignature(xml)) {
        const references = verifier.getSignedReferences();
        if (references.length !== 1) throw refused('the signature must sign exactly one reference');
        return references[0]!;
      }
      altered = true; // a digest that does not match fails the same way with every key
    } catch (error) {
      if (error instanceof KeymeshError) throw error;
    }
  }
  if (altered) throw refused('the assertion was altered after it was signed');
  throw refused('the signature does not verify with a key of the issuer');
}

function readAssertion(root: Element, options: VerifyAssertionOptions): VerifiedAssertion {
  const [now, skew] = [options.now / 1000, options.clockSkewS];
  if (root.getAttribute('Version') !== '2.0') throw refused('the assertion is not SAML version 2.0');
  const issuer = identifier(child(root, SAML, 'Issuer'));
  if (issuer !== options.issuer) throw refused('the assertion is from another issuer');
  const issueInstant = seconds(attribute(root, 'IssueInstant'), 'IssueInstant');
  if (issueInstant === undefined) throw refused('the assertion has no IssueInstant');
  if (issueInstant > now + skew) throw refused('the assertion was issued in the future');
  const conditions = child(root, SAML, 'Conditions');
  const notBefore = seconds(attribute(conditions, 'NotBefore'), 'NotBefore');
  const notOnOrAfter = seconds(attribute(conditions, 'NotOnOrAfter'), 'NotOnOrAfter');
  if (notOnOrAfter === undefined) throw refused('the assertion has no NotOnOrAfter condition');
  if (now >= notOnOrAfter + skew) throw refused('the assertion expired');
  if (notBefore !== undefined && now < notBefore - skew) throw refused('the assertion is not yet valid');
  const restrictions = conditions ? children(conditions, SAML, 'AudienceRestriction') : [];
  const named = restrictions.map((r) => children(r, SAML, 'Audience').map((a) => identifier(a)));
  const expected = options.audiences;
  if (expected && named.length === 0) throw refused('the assertion names no audience');
  if (expected && !named.every((audiences) => audiences.some((a) => expected.includes(a))))
    throw refused('the assertion is for another audience');
  const base = { id: root.getAttribute('ID')!, issuer, issueInstant, notOnOrAfter, audiences: named.flat() };
  return {
    ...base,
    ...(notBefore === undefined ? {} : { notBefore }),
    ...readSubject(root, now, skew),
    attributes: readAttributes(root),
  };
}

function readSubject(root: Element, now: number, skew: number): Pick<VerifiedAssertion, 'subject' | 'confirmation'> {
  const subject = child(root, SAML, 'Subject');
  const nameIdElement = subject && child(subject, SAML, 'NameID');
  // the NameID exactly as signed (no trimming): it is compared with what the issuer recorded
  const nameId = nameIdElement?.textContent ?? '';
  if (!subject || !nameId.trim()) throw refused('the assertion names no subject');
  const format = nameIdElement!.getAttribute('Format');
  const confirmation = children(subject, SAML, 'SubjectConfirmation').find((c) =>
    [CM_BEARER, CM_HOLDER_OF_KEY].includes(c.getAttribute('Method') ?? ''),
  );
  if (!confirmation) throw refused('the assertion has no bearer or holder-of-key subject confirmation');
  const data = child(confirmation, SAML, 'SubjectConfirmationData');
  const until = seconds(attribute(data, 'NotOnOrAfter'), 'SubjectConfirmationData NotOnOrAfter');
  const from = seconds(attribute(data, 'NotBefore'), 'SubjectConfirmationData NotBefore');
  if (until !== undefined && now >= until + skew) throw refused('the subject confirmation expired');
  if (from !== undefined && now < from - skew) throw refused('the subject confirmation is not yet valid');
  const out = { subject: format ? { nameId, format } : { nameId } };
  if (confirmation.getAttribute('Method') === CM_BEARER) return { ...out, confirmation: { method: 'bearer' } };
  const keyInfo = data && child(data, DS_NS, 'KeyInfo');
  const keyValue = keyInfo && child(keyInfo, DS_NS, 'KeyValue');
  const publicKey = keyValue ? jwkOfKeyValue(keyValue) : undefined;
  return { ...out, confirmation: publicKey ? { method: 'holder-of-key', publicKey } : { method: 'holder-of-key' } };
}

function readAttributes(root: Element): Record<string, readonly string[]> {
  const values = new Map<string, string[]>();
  for (const statement of children(root, SAML, 'AttributeStatement')) {
    for (const attribute of children(statement, SAML, 'Attribute')) {
      const name = attribute.getAttribute('Name') ?? '';
      const list = values.get(name) ?? [];
      for (const value of children(attribute, SAML, 'AttributeValue')) list.push(value.textContent ?? '');
      values.set(name, list);
    }
  }
  return Object.fromEntries(values);
}

/** An xs:dateTime in UTC (SAML core section 1.3.3) as seconds since the epoch; undefined when absent. */
function seconds(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const m = DATE_TIME.exec(value);
  const ms = m ? Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!) : Number.NaN;
  if (!m || Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 19) !== value.slice(0, 19))
    throw refused(`its ${name} is not an xs:dateTime in UTC`);
  return ms / 1000 + (m[7] ? Number(`0${m[7]}`) : 0);
}

/** `root` and every element below it. */
function elementsOf(root: Element): Element[] {
  const out = [root];
  for (let i = 0; i < out.length; i++) out.push(...childElements(out[i]!));
  return out;
}

function carriesId(element: Element, id: string): boolean {
  const attributes = element.attributes;
  for (let i = 0; i < attributes.length; i++) {
    const attribute = attributes.item(i)!;
    if (ID_ATTRIBUTES.includes(attribute.localName ?? attribute.name) && attribute.value === id) return true;
  }
  return false;
}

const isAcceptedTransform = (algorithm: string) => ACCEPTED_TRANSFORMS.includes(algorithm);

function is(element: Element | undefined, ns: string, localName: string): boolean {
  return element?.namespaceURI === ns && element.localName === localName;
}

/** The value of attribute `name` of `element`, undefined when absent (xmldom answers '' for a missing one). */
function attribute(element: Element | null | undefined, name: string): string | undefined {
  return element?.hasAttribute(name) ? element.getAttribute(name)! : undefined;
}

const identifier = (element: Element | null | undefined) => (element ? text(element) : '');

const refused = (why: string) => new KeymeshError('ERR_INVALID_TOKEN', `refused SAML assertion: ${why}`);
