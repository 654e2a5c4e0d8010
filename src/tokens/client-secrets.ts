/**
 * Client secrets at rest: how `keymesh hash-client-secret` hashes them and how a presented secret is checked.
 *
 * Two formats, chosen by where the secret came from:
 * - `hmac-sha256$salt$mac`: for a secret `keymesh hash-client-secret` generated (32 random bytes, 256 bits of
 *   entropy). Guessing such a secret is hopeless whatever the hash costs, so a fast keyed hash is enough, and a
 *   check costs microseconds: a flood of wrong secrets cannot turn it into work.
 * - `scrypt$N$r$p$salt$hash`: for a secret an operator chose (`--secret-stdin`), which may be guessable. Checking
 *   it is slow on purpose, so it runs on the bounded slow-hash pool (`slow-hash.ts`), never on the event loop or
 *   the libuv pool that LevelDB and WebCrypto share.
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { KeymeshError } from '../errors.js';

const scryptAsync = promisify(scrypt) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

/** scrypt cost of new hashes of operator-chosen secrets: N = 2^15, r = 8, p = 1 (about 50 ms on one core). */
export const CLIENT_SECRET_SCRYPT = { N: 1 << 15, r: 8, p: 1 } as const;
/** Bytes of a generated client secret. Default is 32 (256 bits). */
export const GENERATED_SECRET_BYTES = 32;
/** Shortest operator-chosen secret accepted, in characters. Default is 16. */
export const MIN_CHOSEN_SECRET_CHARS = 16;
const HASH_BYTES = 32;

/** A parsed stored hash. */
export type SecretHash =
  | { readonly kind: 'hmac-sha256'; readonly salt: Buffer; readonly mac: Buffer }
  | {
      readonly kind: 'scrypt';
      readonly N: number;
      readonly r: number;
      readonly p: number;
      readonly salt: Buffer;
      readonly hash: Buffer;
    };

/** A new random client secret (base64url) and the `hmac-sha256` hash that accepts it. */
export function generateClientSecret(): { secret: string; secretHash: string } {
  const secret = randomBytes(GENERATED_SECRET_BYTES).toString('base64url');
  const salt = randomBytes(16);
  return {
    secret,
    secretHash: `hmac-sha256$${salt.toString('base64url')}$${hmac(salt, secret).toString('base64url')}`,
  };
}

/**
 * The `scrypt` hash of an operator-chosen secret.
 * @throws KeymeshError `ERR_INVALID_REQUEST` for a secret shorter than `MIN_CHOSEN_SECRET_CHARS`.
 */
export async function hashClientSecret(
  secret: string,
  cost: { N: number; r: number; p: number } = CLIENT_SECRET_SCRYPT,
): Promise<string> {
  if (secret.length < MIN_CHOSEN_SECRET_CHARS)
    throw new KeymeshError(
      'ERR_INVALID_REQUEST',
      `a client secret must be at least ${MIN_CHOSEN_SECRET_CHARS} characters`,
    );
  const salt = randomBytes(16);
  const hash = await scryptAsync(secret, salt, HASH_BYTES, { ...cost, maxmem: scryptMaxmem(cost) });
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** The parts of a stored hash; `undefined` when it is not one (or its scrypt cost is out of bounds). */
export function parseSecretHash(text: string): SecretHash | undefined {
  const fast = /^hmac-sha256\$([A-Za-z0-9_-]{22,})\$([A-Za-z0-9_-]{43})$/.exec(text);
  if (fast)
    return { kind: 'hmac-sha256', salt: Buffer.from(fast[1]!, 'base64url'), mac: Buffer.from(fast[2]!, 'base64url') };
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{43})$/.exec(text);
  if (!m) return undefined;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (N < 2 || (N & (N - 1)) !== 0 || N > 1 << 20 || r < 1 || r > 32 || p < 1 || p > 16) return undefined;
  return { kind: 'scrypt', N, r, p, salt: Buffer.from(m[4]!, 'base64url'), hash: Buffer.from(m[5]!, 'base64url') };
}

/** Whether `secret` matches a `hmac-sha256` hash (constant time). */
export function fastSecretMatches(stored: Extract<SecretHash, { kind: 'hmac-sha256' }>, secret: string): boolean {
  return timingSafeEqual(hmac(stored.salt, secret), stored.mac);
}

/** The memory scrypt needs for `cost`, with room to spare (Node refuses above `maxmem`). */
export function scryptMaxmem(cost: { N: number; r: number }): number {
  return 256 * cost.N * cost.r;
}

function hmac(salt: Buffer, secret: string): Buffer {
  return createHmac('sha256', salt).update(secret, 'utf8').digest();
}
