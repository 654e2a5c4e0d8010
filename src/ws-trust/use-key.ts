/**
 * Reading wst:UseKey (WS-Trust 1.3 §9.2): the public key the client wants the issued token bound to, given as
 * ds:KeyInfo/ds:KeyValue. Two forms are read: ds:RSAKeyValue (2048 to 8192 bits) and dsig11:ECKeyValue on P-256
 * with an uncompressed point. The result is a public JWK that Node has imported once, so a point off the curve
 * or a malformed modulus never reaches the operations. Certificates, references to keys elsewhere and other
 * curves are refused: keymesh would have nothing to check them against.
 */
import { createPublicKey, type JsonWebKey as NodeJsonWebKey } from 'node:crypto';
import { child, childElements, text } from '../xml/parse.js';
import { FAULT, WsTrustFault } from './fault.js';
import { CURVE_P256, DS_NS, DSIG11_NS } from './names.js';
import { decodeBase64, encodeBase64Url } from './values.js';

/** Smallest RSA modulus accepted, in bytes (2048 bits). */
export const MIN_RSA_MODULUS_BYTES = 256;
/** Largest RSA modulus accepted, in bytes (8192 bits). */
export const MAX_RSA_MODULUS_BYTES = 1024;
/** Largest RSA public exponent accepted, in bytes. */
const MAX_RSA_EXPONENT_BYTES = 8;
/** Length of an uncompressed P-256 point: 0x04, then X and Y of 32 bytes each. */
const P256_POINT_BYTES = 65;

function unsupported(message: string): WsTrustFault {
  return new WsTrustFault(FAULT.BadRequest, message);
}

/**
 * The public JWK of a wst:UseKey element.
 * @throws WsTrustFault `wst:BadRequest` for a key form keymesh does not take, `wst:InvalidRequest` for a
 *   malformed key.
 */
export function readUseKey(useKey: Element): JsonWebKey {
  const inner = childElements(useKey);
  const keyInfo =
    inner.length === 1 && inner[0]!.namespaceURI === DS_NS && inner[0]!.localName === 'KeyInfo' ? inner[0] : undefined;
  const keyValue = keyInfo && child(keyInfo, DS_NS, 'KeyValue');
  if (!keyValue) throw unsupported('wst:UseKey must hold a ds:KeyInfo with a ds:KeyValue (RSA, or EC on P-256)');
  const rsa = child(keyValue, DS_NS, 'RSAKeyValue');
  const ec = child(keyValue, DSIG11_NS, 'ECKeyValue');
  const jwk = rsa ? rsaJwk(rsa) : ec ? ecJwk(ec) : undefined;
  if (!jwk) throw unsupported('wst:UseKey must be a ds:RSAKeyValue or a dsig11:ECKeyValue');
  try {
    createPublicKey({ key: jwk as NodeJsonWebKey, format: 'jwk' });
  } catch {
    throw new WsTrustFault(FAULT.InvalidRequest, 'the key of wst:UseKey is not a valid public key');
  }
  return jwk;
}

function rsaJwk(rsa: Element): JsonWebKey {
  const modulus = child(rsa, DS_NS, 'Modulus');
  const exponent = child(rsa, DS_NS, 'Exponent');
  if (!modulus || !exponent)
    throw new WsTrustFault(FAULT.InvalidRequest, 'ds:RSAKeyValue needs a Modulus and an Exponent');
  const n = stripLeadingZeros(decodeBase64(text(modulus), 'the RSA Modulus'));
  const e = stripLeadingZeros(decodeBase64(text(exponent), 'the RSA Exponent'));
  if (n.length < MIN_RSA_MODULUS_BYTES || n.length > MAX_RSA_MODULUS_BYTES)
    throw unsupported(
      `the RSA key of wst:UseKey must be ${MIN_RSA_MODULUS_BYTES * 8} to ${MAX_RSA_MODULUS_BYTES * 8} bits`,
    );
  if (e.length === 0 || e.length > MAX_RSA_EXPONENT_BYTES)
    throw new WsTrustFault(FAULT.InvalidRequest, 'the RSA Exponent of wst:UseKey is out of range');
  return { kty: 'RSA', n: encodeBase64Url(n), e: encodeBase64Url(e) };
}

function ecJwk(ec: Element): JsonWebKey {
  const curve = child(ec, DSIG11_NS, 'NamedCurve')?.getAttribute('URI')?.trim();
  if (curve !== CURVE_P256) throw unsupported('the EC key of wst:UseKey must be on the named curve P-256');
  const publicKey = child(ec, DSIG11_NS, 'PublicKey');
  if (!publicKey) throw new WsTrustFault(FAULT.InvalidRequest, 'dsig11:ECKeyValue needs a PublicKey');
  const point = decodeBase64(text(publicKey), 'the EC PublicKey');
  if (point.length !== P256_POINT_BYTES || point[0] !== 0x04)
    throw new WsTrustFault(FAULT.InvalidRequest, 'the EC PublicKey of wst:UseKey must be an uncompressed P-256 point');
  return { kty: 'EC', crv: 'P-256', x: encodeBase64Url(point.subarray(1, 33)), y: encodeBase64Url(point.subarray(33)) };
}

function stripLeadingZeros(bytes: Uint8Array): Uint8Array {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  return bytes.subarray(start);
}
