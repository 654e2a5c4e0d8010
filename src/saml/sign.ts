/**
 * Signing a SAML 2.0 assertion with the realm's signing key: an enveloped XML-DSig signature (SAML core section
 * 5.4) made by xml-crypto.
 *
 * - One Reference, `URI="#<ID>"`, to the assertion itself; transforms enveloped-signature then exclusive C14N;
 *   SHA-256 digest; SignedInfo canonicalized with exclusive C14N.
 * - RSA-SHA256 for an RS256 realm key, ECDSA-SHA256 for ES256. xml-crypto 6 knows no ECDSA, so
 *   {@link EcdsaSha256Signature} is registered on each `SignedXml` under its RFC 6931 URI; XML-DSig wants the raw
 *   `r || s` value (node's `dsaEncoding: 'ieee-p1363'`), not DER.
 * - The Signature goes right after Issuer, where the SAML schema puts it.
 * - KeyInfo carries only `ds:KeyName`, the key's kid: a verifier picks its trusted key by name and never takes
 *   a key from the document. xml-crypto writes it (KeyInfo is not signed); the kid is checked to be base64url first.
 *
 * EdDSA has no XML-DSig URI that interoperates, so a realm signing with it cannot issue SAML assertions.
 */
import { type BinaryLike, type KeyObject, type KeyLike, sign, verify } from 'node:crypto';
import { XMLSerializer } from '@xmldom/xmldom';
import { createOptionalCallbackFunction, type SignatureAlgorithm, SignedXml } from 'xml-crypto';
import { KeymeshError } from '../errors.js';
import { keyObjectOf, type SigningKey } from '../tokens/jws-signer.js';
import { ECDSA_SHA256, ENVELOPED_SIGNATURE, EXC_C14N, RSA_SHA256, SAML2_ASSERTION_NS, SHA256 } from './names.js';

/** The XML-DSig signature method of each realm key algorithm that can sign assertions. */
const SIGNATURE_METHODS: Readonly<Record<string, string>> = { RS256: RSA_SHA256, ES256: ECDSA_SHA256 };
const AFTER_ISSUER = `/*/*[local-name(.)='Issuer' and namespace-uri(.)='${SAML2_ASSERTION_NS}']`;

const bytes = (data: BinaryLike) => (typeof data === 'string' ? Buffer.from(data) : data);

/**
 * ECDSA with SHA-256 for xml-crypto (`http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256`), the signature value
 * being base64 of the raw `r || s` XML-DSig 1.1 section 6.4.3 asks for. A verification that fails for any reason
 * (wrong key type, malformed value) answers false.
 */
export class EcdsaSha256Signature implements SignatureAlgorithm {
  getSignature = createOptionalCallbackFunction((signedInfo: BinaryLike, privateKey: KeyLike): string =>
    sign('sha256', bytes(signedInfo), { key: privateKey as KeyObject, dsaEncoding: 'ieee-p1363' }).toString('base64'),
  );

  verifySignature = createOptionalCallbackFunction((material: string, key: KeyLike, signatureValue: string) => {
    try {
      const value = Buffer.from(signatureValue, 'base64');
      return verify('sha256', Buffer.from(material), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' }, value);
    } catch {
      return false;
    }
  });

  getAlgorithmName = () => ECDSA_SHA256;
}

/**
 * Signs the assertion `doc` (from `buildAssertion`) with `key` and returns the signed assertion's XML. `doc` is
 * not changed.
 * @throws KeymeshError `ERR_UNSUPPORTED_TOKEN_TYPE` when `key.alg` is neither RS256 nor ES256; `ERR_INTERNAL`
 *   when `doc` is not a SAML 2.0 Assertion with an ID and an Issuer.
 */
export function signAssertion(doc: Document, key: SigningKey): string {
  const method = SIGNATURE_METHODS[key.alg];
  if (!method) {
    throw new KeymeshError(
      'ERR_UNSUPPORTED_TOKEN_TYPE',
      `SAML assertions need an RS256 or ES256 realm signing key; this realm signs with ${key.alg}`,
    );
  }
  const root = doc.documentElement;
  if (root?.namespaceURI !== SAML2_ASSERTION_NS || root.localName !== 'Assertion' || !root.getAttribute('ID'))
    throw new KeymeshError('ERR_INTERNAL', 'only a SAML 2.0 Assertion with an ID can be signed as one');
  const signer = new SignedXml({
    privateKey: keyObjectOf(key.key, 'assertions'),
    signatureAlgorithm: method,
    canonicalizationAlgorithm: EXC_C14N,
  });
  signer.SignatureAlgorithms[ECDSA_SHA256] = EcdsaSha256Signature;
  // KeyInfo names the key by its kid: xml-crypto writes KeyInfo's content as given, so the kid (a JWK thumbprint,
  // base64url) is checked to be one before it goes in, never escaped or trusted
  if (!KID.test(key.kid))
    throw new KeymeshError('ERR_INTERNAL', 'a kid that is not base64url cannot name a SAML signing key');
  signer.getKeyInfoContent = ({ prefix }) => `<${prefix}:KeyName>${key.kid}</${prefix}:KeyName>`;
  signer.addReference({ xpath: '/*', transforms: [ENVELOPED_SIGNATURE, EXC_C14N], digestAlgorithm: SHA256 });
  try {
    signer.computeSignature(serialize(doc), { prefix: 'ds', location: { reference: AFTER_ISSUER, action: 'after' } });
  } catch (cause) {
    throw new KeymeshError('ERR_INTERNAL', 'the assertion could not be signed', { cause });
  }
  return signer.getSignedXml();
}

const KID = /^[A-Za-z0-9_-]{1,128}$/;

/**
 * `node` as XML. A carriage return in text would be written raw and read back as a line feed (XML section 2.11),
 * changing the signed content, so it is written as a character reference, as xml-crypto does.
 */
function serialize(node: Node): string {
  return new XMLSerializer()
    .serializeToString(node, false, undefined, { requireWellFormed: true })
    .replace(/\r/g, '&#xD;');
}
