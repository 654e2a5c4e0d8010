/**
 * Register records that expire (DESIGN §8, bounded state). A replay record (`jti/`, `dpop/`), a revocation
 * (`revoked/`), a renewal claim (`renewed/`) and a token-store entry (`token/`) matter only while the thing they
 * stand for is valid. Their values carry that expiry in a small header in front of the payload, so it travels with
 * the value through every phase, forward, repair and hand-over, and every replica learns the same expiry from the
 * value Paxos chose. Each replica removes such a record once its expiry plus twice `clockSkewMs` (the verifier's
 * leeway plus how far another node's clock may be off) has passed (`SealedAcceptorStore.sweep`, every
 * `sweepIntervalMs`, reading only what is due): by then the thing it stands for fails its own expiry check
 * everywhere, so a replay stays refused for exactly as long as it could matter.
 *
 * Only keys under {@link EXPIRING_PREFIXES} are ever collected; every other register (user secrets, the cluster
 * map, the operators' `kv/` registers) is kept for ever whatever its value looks like. A value under those
 * prefixes written before expiries existed has no header and is kept, as it was.
 *
 * Header: byte 0xff, byte 0x54 ("T"), then the expiry in whole seconds since the Unix epoch as an unsigned 64-bit
 * big-endian integer. 0xff never starts an older value of these namespaces (a msgpack map, a sealed value's "KM",
 * a UTF-8 jti or an 8-byte expiry below 2^56); a random 16-byte replay record might, and that is harmless: such a
 * record would only be collected at a time that is not its own.
 */
import { KeymeshError } from '../errors.js';

/** The register namespaces whose records expire. */
export const EXPIRING_PREFIXES = ['jti/', 'dpop/', 'revoked/', 'renewed/', 'token/'] as const;

const MAGIC_0 = 0xff;
const MAGIC_1 = 0x54;
const HEADER_BYTES = 10;
/** Length of the expiry header. */
export const EXPIRY_HEADER_BYTES = HEADER_BYTES;
/** Latest expiry a header may carry (seconds): year 9999, far beyond any token, and exact in a double. */
export const MAX_EXPIRY_S = 253_402_300_799;

/** Whether records under `key` expire (and must be written with an expiry). */
export function isExpiringKey(key: string): boolean {
  return EXPIRING_PREFIXES.some((prefix) => key.startsWith(prefix));
}

/**
 * `value` with the expiry header in front.
 * @throws KeymeshError `ERR_INTERNAL` when `expiresAtS` is not a whole number of seconds in range.
 */
export function withExpiry(expiresAtS: number, value: Uint8Array): Uint8Array {
  if (!Number.isSafeInteger(expiresAtS) || expiresAtS < 0 || expiresAtS > MAX_EXPIRY_S) {
    throw new KeymeshError(
      'ERR_INTERNAL',
      `a register record's expiry must be whole seconds from 0 to ${MAX_EXPIRY_S}, got ${expiresAtS}`,
    );
  }
  const out = new Uint8Array(HEADER_BYTES + value.byteLength);
  out[0] = MAGIC_0;
  out[1] = MAGIC_1;
  new DataView(out.buffer).setBigUint64(2, BigInt(expiresAtS));
  out.set(value, HEADER_BYTES);
  return out;
}

/** The expiry (seconds) a value carries, or undefined when it has no header. */
export function expiryOf(value: Uint8Array): number | undefined {
  if (value.byteLength < HEADER_BYTES || value[0] !== MAGIC_0 || value[1] !== MAGIC_1) return undefined;
  const expiry = new DataView(value.buffer, value.byteOffset, value.byteLength).getBigUint64(2);
  return expiry > BigInt(MAX_EXPIRY_S) ? undefined : Number(expiry);
}

/** The payload of a value: without its expiry header, if it has one. */
export function withoutExpiry(value: Uint8Array): Uint8Array {
  return expiryOf(value) === undefined ? value : value.subarray(HEADER_BYTES);
}
