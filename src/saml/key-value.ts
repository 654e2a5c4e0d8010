/**
 * A public key as an XML-DSig `ds:KeyValue`, the form a holder-of-key assertion names its confirmation key in
 * (`SubjectConfirmationData xsi:type="saml:KeyInfoConfirmationDataType"`), and back.
 *
 * - RSA: `ds:RSAKeyValue` with `ds:Modulus` and `ds:Exponent`, each the big-endian integer in base64 (XML-DSig
 *   section 4.4.2.2); a JWK's `n` and `e` are the same bytes in base64url.
 * - EC: `dsig11:ECKeyValue` with `dsig11:NamedCurve URI="urn:oid:…"` and `dsig11:PublicKey`, the uncompressed
 *   point `0x04 || x || y` in base64 (XML-DSig 1.1 section 4.5.2.3).
 *
 * Both directions go through `crypto.createPublicKey`, so only a key node:crypto accepts is written or read back,
 * and a private JWK is reduced to its public half before anything is written.
 */
import { createPublicKey, type JsonWebKey as NodeJwk } from 'node:crypto';
import { KeymeshError } from '../errors.js';
import { child, text } from '../xml/parse.js';
import { DS_NS, DSIG11_NS, EC_CURVE_URIS } from './names.js';

const COORDINATE_BYTES: Readonly<Record<string, number>> = { 'P-256': 32, 'P-384': 48, 'P-521': 66 };
const UNCOMPRESSED_POINT = 0x04;

/**
 * Writes the public half of `jwk` as a `ds:KeyValue` element owned by `doc` (not yet inserted anywhere).
 * @throws KeymeshError `ERR_INVALID_REQUEST` when `jwk` is not an RSA key or an EC key on P-256, P-384 or P-521.
 */
export function keyValueElement(doc: Document, jwk: JsonWebKey): Element {
  const key = publicJwk(jwk);
  if (!key) throw new KeymeshError('ERR_INVALID_REQUEST', 'a holder-of-key assertion needs an RSA or EC public key');
  const keyValue = doc.createElementNS(DS_NS, 'ds:KeyValue');
  if (key.kty === 'RSA') {
    const rsa = append(keyValue, DS_NS, 'ds:RSAKeyValue');
    append(rsa, DS_NS, 'ds:Modulus').textContent = base64(key.n);
    append(rsa, DS_NS, 'ds:Exponent').textContent = base64(key.e);
  } else {
    const ec = append(keyValue, DSIG11_NS, 'dsig11:ECKeyValue');
    append(ec, DSIG11_NS, 'dsig11:NamedCurve').setAttribute('URI', EC_CURVE_URIS[key.crv!]!);
    const point = Buffer.concat([
      Buffer.of(UNCOMPRESSED_POINT),
      Buffer.from(key.x!, 'base64url'),
      Buffer.from(key.y!, 'base64url'),
    ]);
    append(ec, DSIG11_NS, 'dsig11:PublicKey').textContent = point.toString('base64');
  }
  return keyValue;
}

/**
 * Reads the public key of a `ds:KeyValue` as a JWK; undefined when it holds neither an RSA nor an EC key.
 * @throws KeymeshError `ERR_INVALID_TOKEN` when the key it holds is malformed.
 */
export function jwkOfKeyValue(keyValue: Element): JsonWebKey | undefined {
  const rsa = child(keyValue, DS_NS, 'RSAKeyValue');
  if (rsa) {
    const modulus = child(rsa, DS_NS, 'Modulus');
    const exponent = child(rsa, DS_NS, 'Exponent');
    if (!modulus || !exponent) throw malformed();
    return publicJwk({ kty: 'RSA', n: base64url(text(modulus)), e: base64url(text(exponent)) }) ?? throwMalformed();
  }
  const ec = child(keyValue, DSIG11_NS, 'ECKeyValue');
  if (!ec) return undefined;
  const uri = child(ec, DSIG11_NS, 'NamedCurve')?.getAttribute('URI');
  const crv = Object.keys(EC_CURVE_URIS).find((name) => EC_CURVE_URIS[name] === uri);
  const publicKey = child(ec, DSIG11_NS, 'PublicKey');
  if (!crv || !publicKey) throw malformed();
  const size = COORDINATE_BYTES[crv]!;
  const point = Buffer.from(text(publicKey).replace(/\s+/g, ''), 'base64');
  if (point.length !== 1 + 2 * size || point[0] !== UNCOMPRESSED_POINT) throw malformed();
  const x = point.subarray(1, 1 + size).toString('base64url');
  const y = point.subarray(1 + size).toString('base64url');
  return publicJwk({ kty: 'EC', crv, x, y }) ?? throwMalformed();
}

/** The public JWK node:crypto makes of `jwk` when it is RSA or EC on a listed curve, else undefined. */
function publicJwk(jwk: JsonWebKey): JsonWebKey | undefined {
  let out: NodeJwk;
  try {
    out = createPublicKey({ key: jwk as NodeJwk, format: 'jwk' }).export({ format: 'jwk' });
  } catch {
    return undefined;
  }
  if (out.kty === 'RSA' && typeof out.n === 'string' && typeof out.e === 'string') {
    return { kty: 'RSA', n: out.n, e: out.e };
  }
  if (out.kty === 'EC' && typeof out.crv === 'string' && out.crv in EC_CURVE_URIS) {
    return { kty: 'EC', crv: out.crv, x: out.x as string, y: out.y as string };
  }
  return undefined;
}

function append(parent: Element, ns: string, qualifiedName: string): Element {
  return parent.appendChild(parent.ownerDocument.createElementNS(ns, qualifiedName));
}

const base64 = (value: string | undefined) => Buffer.from(value ?? '', 'base64url').toString('base64');
const base64url = (value: string) => Buffer.from(value.replace(/\s+/g, ''), 'base64').toString('base64url');

function malformed(): KeymeshError {
  return new KeymeshError('ERR_INVALID_TOKEN', 'the holder-of-key KeyValue is not a valid public key');
}

function throwMalformed(): never {
  throw malformed();
}
