/**
 * The WS-Trust 1.3 PSHA1 computed key (§4.4.4.2 of the spec): when a client sends its own entropy, the STS does
 * not choose the key alone; client and STS each contribute entropy, and both sides derive the same key from the
 * two without it ever crossing the wire. The derivation is the TLS 1.0/1.1 `P_SHA1` expansion (RFC 2246 §5):
 *
 *   A(0) = seed,  A(i) = HMAC_SHA1(secret, A(i-1))
 *   P_SHA1(secret, seed) = HMAC_SHA1(secret, A(1) + seed) + HMAC_SHA1(secret, A(2) + seed) + …
 *
 * truncated to the length wanted. For the computed key the secret is the client's entropy (EntREQ), the seed the
 * server's (EntRES), and the length the key size in bytes. The output of a shorter expansion is always a prefix of
 * a longer one, which the tests rely on.
 */
import { createHmac } from 'node:crypto';
import { KeymeshError } from '../errors.js';

/** The WS-Trust 1.3 `ComputedKeyAlgorithm` URI for the PSHA1 computed key. */
export const COMPUTED_KEY_PSHA1 = 'http://docs.oasis-open.org/ws-sx/ws-trust/200512/CK/PSHA1';

/** Smallest computed key, in bits. */
export const MIN_KEY_SIZE_BITS = 128;
/** Largest computed key, in bits. */
export const MAX_KEY_SIZE_BITS = 512;

/** Output size of HMAC-SHA1, in bytes. */
const SHA1_BYTES = 20;
/** Longest expansion asked of {@link pSha1}, in bytes: far above any key, low enough to bound the work. */
const MAX_OUTPUT_BYTES = 1024;

function hmacSha1(secret: Uint8Array, ...parts: Uint8Array[]): Buffer {
  const hmac = createHmac('sha1', secret);
  for (const part of parts) hmac.update(part);
  return hmac.digest();
}

/**
 * `P_SHA1(secret, seed)` truncated to `length` bytes.
 * @throws KeymeshError `ERR_INVALID_REQUEST` when `length` is not an integer in 0–1024.
 */
export function pSha1(secret: Uint8Array, seed: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0 || length > MAX_OUTPUT_BYTES) {
    throw new KeymeshError(
      'ERR_INVALID_REQUEST',
      `P_SHA1 output length must be an integer from 0 to ${MAX_OUTPUT_BYTES} bytes`,
    );
  }
  const out = new Uint8Array(length);
  let a: Uint8Array = seed;
  for (let offset = 0; offset < length; offset += SHA1_BYTES) {
    a = hmacSha1(secret, a);
    out.set(hmacSha1(secret, a, seed).subarray(0, length - offset), offset);
  }
  return out;
}

/**
 * Checks a requested key size: a multiple of 8 bits from 128 to 512.
 * @throws KeymeshError `ERR_INVALID_REQUEST` naming the allowed range.
 */
export function checkKeySize(keySizeBits: number): void {
  if (
    !Number.isInteger(keySizeBits) ||
    keySizeBits < MIN_KEY_SIZE_BITS ||
    keySizeBits > MAX_KEY_SIZE_BITS ||
    keySizeBits % 8 !== 0
  ) {
    throw new KeymeshError(
      'ERR_INVALID_REQUEST',
      `keySize must be a multiple of 8 from ${MIN_KEY_SIZE_BITS} to ${MAX_KEY_SIZE_BITS} bits`,
    );
  }
}

/**
 * The WS-Trust PSHA1 computed key: `P_SHA1(clientEntropy, serverEntropy)` truncated to `keySizeBits / 8` bytes.
 * @throws KeymeshError `ERR_INVALID_REQUEST` when either entropy is empty or the key size is outside 128–512
 *   bits or not a multiple of 8.
 */
export function computedKey(clientEntropy: Uint8Array, serverEntropy: Uint8Array, keySizeBits: number): Uint8Array {
  checkKeySize(keySizeBits);
  if (clientEntropy.length === 0)
    throw new KeymeshError('ERR_INVALID_REQUEST', 'computed key: the client entropy is empty');
  if (serverEntropy.length === 0)
    throw new KeymeshError('ERR_INVALID_REQUEST', 'computed key: the server entropy is empty');
  return pSha1(clientEntropy, serverEntropy, keySizeBits / 8);
}
