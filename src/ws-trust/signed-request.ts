/**
 * The second way a caller authenticates: a signed request (WS-Security SOAP Message Security with an XML-DSig
 * signature and no X.509). A client registered with public keys (a private_key_jwt client) signs the wsu:Timestamp
 * and the SOAP Body of its request with one of its keys; its UsernameToken carries only the client id.
 *
 * What the signature must be, all of it checked on the parsed tree before anything is digested or verified:
 * - exactly one ds:Signature, a child of wsse:Security, laid out SignedInfo, SignatureValue, KeyInfo? — KeyInfo
 *   holding only a ds:KeyName, the kid of the signing key;
 * - SignedInfo: exclusive C14N (without InclusiveNamespaces), RSA-SHA256 or ECDSA-SHA256, exactly two References;
 * - each Reference: `URI="#<wsu:Id>"`, exclusive C14N as its only transform, a SHA-256 digest;
 * - the two ids differ, each is carried by exactly one element of the whole document (counting every attribute
 *   named Id, ID or id in any namespace, as id resolvers such as xml-crypto's do) and carried there as wsu:Id;
 * - those two elements ARE, by node identity, the envelope's Header/Security/Timestamp and the envelope's Body.
 *
 * Verify what is used: each digest is computed over the very node it names (exclusive C14N, comments left out),
 * and the binding reads the request from that same Body node. A signature over anything else — a copy of the Body
 * moved into a header, a second element with the same id, the Timestamp alone, a third element — is refused, never
 * partly trusted. Nothing is re-parsed, so no second parser can disagree about which node an id names.
 *
 * Bounded work before the caller is known: one signature, two references, so two canonicalizations and two
 * SHA-256 digests; then, inside {@link SignedProof.verify}, one signature check per registered key of the
 * signature's type (RSA keys for RSA-SHA256 with xml-crypto's algorithm; P-256 keys for ECDSA-SHA256 with keymesh's
 * {@link EcdsaSha256Signature}). Each key's answer is remembered, so a second call costs nothing new.
 *
 * Replay: the replay id is the SHA-256 of the canonical SignedInfo (which holds both digests), not of the
 * SignatureValue: an ECDSA value can be re-encoded into another valid one for the same content (s and n − s).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { ExclusiveCanonicalization, type SignatureAlgorithm, SignedXml } from 'xml-crypto';
import { ECDSA_SHA256, EXC_C14N, RSA_SHA256, SHA256 } from '../saml/names.js';
import { EcdsaSha256Signature } from '../saml/sign.js';
import { childElements, text } from '../xml/parse.js';
import { FAULT, WsTrustFault } from './fault.js';
import { DS_NS, WSU_NS } from './names.js';
import { decodeBase64 } from './values.js';

/** The number of References a signed request's SignedInfo holds: the Timestamp and the Body. */
export const SIGNED_REFERENCES = 2;
/** Longest wsu:Id a Reference may name, and longest KeyName, in characters. */
export const MAX_ID_CHARS = 256;

/** What a signed request proves, once the operations have checked it with the client's keys. */
export interface SignedProof {
  /**
   * True when the signature verifies with one of `keys` (public keys; RSA for RSA-SHA256, P-256 for ECDSA-SHA256,
   * others skipped). `kid`, when given, is the kid of `keys`: if the signature names another KeyName, the answer is
   * false without trying them. Synchronous, never throws, remembers each key's answer.
   */
  readonly verify: (keys: readonly KeyObject[], kid: string | undefined) => boolean;
  /** base64url SHA-256 of the canonical SignedInfo. */
  readonly replayId: string;
  /** The KeyName of the signature, when it has one. */
  readonly kid: string | undefined;
}

/** The referenced nodes a signature must cover, exactly these two and nothing else. */
export interface SignedTargets {
  /** The envelope's Header/Security/Timestamp. */
  readonly timestamp: Element;
  /** The envelope's Body. */
  readonly body: Element;
}

const ID_NAMES: readonly string[] = ['Id', 'ID', 'id'];
const ELEMENT_NODE = 1;
const PROCESSING_INSTRUCTION_NODE = 7;

/**
 * Checks the shape of `signature` and the digests of what it references, and returns the proof to hand to
 * `ops.authenticateSigned`. No key is used here.
 * @throws WsTrustFault `wst:FailedAuthentication` for any signature keymesh does not accept or whose digests do not
 *   match the Timestamp and Body.
 */
export function readSignedRequest(signature: Element, targets: SignedTargets): SignedProof {
  const [signedInfo, value, keyInfo, ...extra] = childElements(signature);
  if (!is(signedInfo, DS_NS, 'SignedInfo') || !is(value, DS_NS, 'SignatureValue') || extra.length > 0)
    throw refused('the ds:Signature must be laid out as SignedInfo, SignatureValue, KeyInfo');
  const kid = keyInfo ? readKeyName(keyInfo) : undefined;
  const [c14n, method, ...references] = childElements(signedInfo!);
  if (!is(c14n, DS_NS, 'CanonicalizationMethod') || algorithmOf(c14n!) !== EXC_C14N || childElements(c14n!).length)
    throw refused('SignedInfo must be canonicalized with exclusive C14N');
  if (!is(method, DS_NS, 'SignatureMethod') || childElements(method!).length > 0)
    throw refused('SignedInfo must name its SignatureMethod');
  const verifier = verifierOf(algorithmOf(method!));
  if (references.length !== SIGNED_REFERENCES || !references.every((r) => is(r, DS_NS, 'Reference')))
    throw refused('the signature must hold exactly two References: the wsu:Timestamp and the SOAP Body');
  const read = references.map(readReference);
  const ids = read.map((reference) => reference.id);
  const signed = resolve(ids, targets);
  read.forEach((reference, i) => {
    if (!createHash('sha256').update(canonical(signed[i]!)).digest().equals(reference.digest))
      throw refused('the request was altered after it was signed');
  });
  const signatureValue = readBase64(text(value!), 'the SignatureValue').toString('base64');
  const material = canonical(signedInfo!);
  const answers = new WeakMap<KeyObject, boolean>();
  const check = (key: KeyObject): boolean => {
    let answer = answers.get(key);
    if (answer === undefined) {
      answer = verifier.fits(key) && verifier.algorithm.verifySignature(material, key, signatureValue) === true;
      answers.set(key, answer);
    }
    return answer;
  };
  return {
    verify: (keys, keysKid) => {
      try {
        if (kid !== undefined && keysKid !== undefined && keysKid !== kid) return false;
        return keys.some(check);
      } catch {
        return false;
      }
    },
    replayId: createHash('sha256').update(material).digest('base64url'),
    kid,
  };
}

/** The signature algorithm of `method` and the keys it may be tried with; only the two keymesh accepts. */
function verifierOf(method: string): { algorithm: SignatureAlgorithm; fits: (key: KeyObject) => boolean } {
  if (method === RSA_SHA256) {
    const RsaSha256 = new SignedXml().SignatureAlgorithms[RSA_SHA256]!;
    return { algorithm: new RsaSha256(), fits: (key) => key.type === 'public' && key.asymmetricKeyType === 'rsa' };
  }
  if (method === ECDSA_SHA256) {
    const fits = (key: KeyObject) =>
      key.type === 'public' && key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
    return { algorithm: new EcdsaSha256Signature(), fits };
  }
  throw refused('the signature method must be RSA-SHA256 or ECDSA-SHA256');
}

function readKeyName(keyInfo: Element): string {
  const [keyName, ...extra] = childElements(keyInfo);
  if (!is(keyInfo, DS_NS, 'KeyInfo') || !is(keyName, DS_NS, 'KeyName') || extra.length > 0)
    throw refused('the signature KeyInfo may hold only a ds:KeyName');
  const kid = text(keyName!);
  if (kid.length === 0 || kid.length > MAX_ID_CHARS)
    throw refused(`the KeyName must be 1 to ${MAX_ID_CHARS} characters`);
  return kid;
}

function readReference(reference: Element): { id: string; digest: Buffer } {
  const uri = reference.getAttribute('URI') ?? '';
  const id = uri.slice(1);
  if (!uri.startsWith('#') || id.length === 0 || id.length > MAX_ID_CHARS)
    throw refused('each Reference must name its element by URI="#<wsu:Id>"');
  const [transforms, digestMethod, digestValue, ...extra] = childElements(reference);
  const laidOut = is(transforms, DS_NS, 'Transforms') && is(digestMethod, DS_NS, 'DigestMethod');
  if (!laidOut || !is(digestValue, DS_NS, 'DigestValue') || extra.length > 0)
    throw refused('each Reference must be laid out as Transforms, DigestMethod, DigestValue');
  const [transform, ...more] = childElements(transforms!);
  const onlyExcC14n = is(transform, DS_NS, 'Transform') && algorithmOf(transform!) === EXC_C14N;
  if (!onlyExcC14n || more.length > 0 || childElements(transform!).length > 0)
    throw refused('exclusive C14N must be the only transform of each Reference');
  if (algorithmOf(digestMethod!) !== SHA256 || childElements(digestMethod!).length > 0)
    throw refused('each Reference must be digested with SHA-256');
  const digest = readBase64(text(digestValue!), 'a DigestValue');
  if (digest.length !== 32) throw refused('a DigestValue must be a SHA-256 digest');
  return { id, digest };
}

/**
 * The elements `ids` name, in order, once each id is found on exactly one element of the document, as its wsu:Id,
 * and the elements are exactly the Timestamp and the Body.
 */
function resolve(ids: readonly string[], targets: SignedTargets): Element[] {
  if (new Set(ids).size !== ids.length) throw refused('the References must name two different elements');
  const carriers = new Map<string, Element[]>(ids.map((id) => [id, []]));
  const pending: Element[] = [targets.body.ownerDocument.documentElement];
  while (pending.length > 0) {
    const element = pending.pop()!;
    for (const id of idsOf(element)) carriers.get(id)?.push(element);
    pending.push(...childElements(element));
  }
  const elements = ids.map((id) => {
    const found = carriers.get(id)!;
    if (found.length !== 1) throw refused('each referenced wsu:Id must appear on exactly one element');
    if (found[0]!.getAttributeNS(WSU_NS, 'Id') !== id) throw refused('each referenced element must carry a wsu:Id');
    return found[0]!;
  });
  const covered = [targets.timestamp, targets.body];
  if (!covered.every((target) => elements.includes(target)))
    throw refused('the signature must cover the wsu:Timestamp and the SOAP Body of the envelope, and nothing else');
  return elements;
}

/** The distinct values of the attributes of `element` that an id resolver could take for its id. */
function idsOf(element: Element): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i < element.attributes.length; i++) {
    const attribute = element.attributes.item(i)!;
    if (ID_NAMES.includes(attribute.localName ?? attribute.name)) out.add(attribute.value);
  }
  return out;
}

/**
 * Exclusive C14N without comments of `element` and what it holds (the same-document reference of XML-DSig).
 * xml-crypto's canonicalizer writes a processing instruction's data as if it were text, so one could stand in for
 * signed text the request reader would not see: a signed element holding one is refused.
 */
function canonical(element: Element): string {
  const pending: Node[] = [element];
  while (pending.length > 0) {
    for (let node = pending.pop()!.firstChild; node; node = node.nextSibling) {
      if (node.nodeType === PROCESSING_INSTRUCTION_NODE)
        throw refused('a signed element may not hold processing instructions');
      if (node.nodeType === ELEMENT_NODE) pending.push(node);
    }
  }
  const out = new ExclusiveCanonicalization().process(element, {});
  if (typeof out !== 'string') throw refused('the signed content could not be canonicalized');
  return out;
}

function readBase64(value: string, what: string): Buffer {
  try {
    return Buffer.from(decodeBase64(value, what));
  } catch {
    throw refused(`${what} is not base64`);
  }
}

const algorithmOf = (element: Element) => element.getAttribute('Algorithm') ?? '';

function is(element: Element | undefined, ns: string, localName: string): boolean {
  return element?.namespaceURI === ns && element.localName === localName;
}

const refused = (why: string) => new WsTrustFault(FAULT.FailedAuthentication, `signed request refused: ${why}`);
