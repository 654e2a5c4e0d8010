/**
 * Compact JWS signing with `node:crypto` directly. `jose`'s `SignJWT` goes through WebCrypto (async, a copy and a
 * promise per step) and reaches about a third of what a synchronous `crypto.sign` of the same bytes does; tokens
 * are keymesh's hot path, so they are signed here: the payload encoded once, one synchronous `crypto.sign` with the
 * key's `KeyObject` (imported once per key), and the protected header, the same for every token of a key and type,
 * serialised and encoded once. Verification stays on `jose`.
 */
import { KeyObject, sign } from 'node:crypto';
import type { CryptoKey } from 'jose';
import { KeymeshError } from '../errors.js';

/** A signing key: its kid and alg, and the private key `jose` imported (a WebCrypto `CryptoKey` or `KeyObject`). */
export interface SigningKey {
  readonly kid: string;
  readonly alg: string;
  readonly key: CryptoKey | KeyObject | Uint8Array;
}

const keyObjects = new WeakMap<object, KeyObject>();

/** The `KeyObject` of a signing key, imported once per key. @throws KeymeshError `ERR_INTERNAL` for a symmetric key. */
export function keyObjectOf(key: SigningKey['key'], what = 'tokens'): KeyObject {
  if (key instanceof KeyObject) return key;
  if (key instanceof Uint8Array) throw new KeymeshError('ERR_INTERNAL', `a symmetric key cannot sign ${what}`);
  let object = keyObjects.get(key);
  if (!object) {
    object = KeyObject.from(key);
    keyObjects.set(key, object);
  }
  return object;
}

const b64 = (data: string) => Buffer.from(data).toString('base64url');

/** Encoded protected headers kept at most; past it the cache starts again (kids are few: a rotation adds one). */
export const JWS_HEADER_CACHE_MAX = 64;
const encodedHeaders = new Map<string, string>();

/** The base64url protected header of `alg`, `kid` and `typ`, serialised once per combination. */
export function encodedHeader(alg: string, kid: string, typ: string): string {
  // length-prefixed, so that no two combinations share an id whatever characters a kid holds
  const id = `${alg.length}:${alg}${kid.length}:${kid}${typ}`;
  let header = encodedHeaders.get(id);
  if (header === undefined) {
    if (encodedHeaders.size >= JWS_HEADER_CACHE_MAX) encodedHeaders.clear();
    header = b64(JSON.stringify({ alg, kid, typ }));
    encodedHeaders.set(id, header);
  }
  return header;
}

/** Signs `payload` with `key` under a protected header of `alg`, `kid` and `typ`. */
export function signJws(payload: Readonly<Record<string, unknown>>, key: SigningKey, typ: string): string {
  const input = `${encodedHeader(key.alg, key.kid, typ)}.${b64(JSON.stringify(payload))}`;
  const data = Buffer.from(input);
  const object = keyObjectOf(key.key);
  let signature: Buffer;
  switch (key.alg) {
    case 'ES256':
      signature = sign('sha256', data, { key: object, dsaEncoding: 'ieee-p1363' });
      break;
    case 'RS256':
      signature = sign('sha256', data, object);
      break;
    case 'EdDSA':
    case 'Ed25519':
      signature = sign(null, data, object);
      break;
    default:
      throw new KeymeshError('ERR_INTERNAL', `no signer for alg ${key.alg}`);
  }
  return `${input}.${signature.toString('base64url')}`;
}
