/**
 * Register values that carry secrets (a user's secret, an SCT and its key) are sealed before they are proposed:
 * AES-256-GCM under the management key (the node's {@link Sealer}), with the register key as associated data. So
 * they cross the wire inside Noise *and* sealed (DESIGN §5), sit sealed in every replica's acceptor state, and a
 * value moved to another register key does not open. Any node holding the management key opens what another
 * sealed. Values written before sealing (a user secret of exactly `LEGACY_SECRET_BYTES`, an unsealed token-store
 * entry) are still read as they are.
 */
import { readSealHeader, type Sealer } from './sealer.js';
import { KeymeshError } from '../errors.js';

/** The size of a user secret stored before values were sealed. */
export const LEGACY_SECRET_BYTES = 32;

/** Associated data of a sealed register value: its register key. */
function context(registerKey: string): string {
  return `register|${registerKey}`;
}

/** `value` sealed for register `registerKey`. */
export function sealRegisterValue(sealer: Sealer, registerKey: string, value: Uint8Array): Uint8Array {
  return sealer.seal(context(registerKey), value);
}

/**
 * The plaintext of a register value: opened when sealed, as it is when `isLegacy` says it was stored unsealed.
 * @throws KeymeshError `ERR_RECORD_CORRUPT` when a sealed value does not open (tampered, moved, another key).
 */
export function openRegisterValue(
  sealer: Sealer,
  registerKey: string,
  value: Uint8Array,
  isLegacy: (value: Uint8Array) => boolean,
): Uint8Array {
  if (isLegacy(value)) return value;
  try {
    return sealer.open(context(registerKey), value);
  } catch (err) {
    throw new KeymeshError(
      'ERR_RECORD_CORRUPT',
      `register value ${registerKey} does not open under the management key`,
      { cause: err },
    );
  }
}

/**
 * `value` sealed again under the sealing epoch when it is a register value sealed under another one (behind an
 * expiry header, if it has one); undefined when there is nothing to do: not sealed, already current, or bytes
 * that only look sealed (a random replay record) and do not open.
 */
export function resealRegisterValue(
  sealer: Sealer,
  registerKey: string,
  value: Uint8Array,
  headerBytes: number,
): Uint8Array | undefined {
  const body = value.subarray(headerBytes);
  let epoch: number;
  try {
    epoch = readSealHeader(body).epoch;
  } catch {
    return undefined;
  }
  if (epoch === sealer.sealingEpoch) return undefined;
  let plaintext: Buffer;
  try {
    plaintext = sealer.open(context(registerKey), body);
  } catch {
    return undefined;
  }
  const resealed = sealer.seal(context(registerKey), plaintext);
  const out = new Uint8Array(headerBytes + resealed.byteLength);
  out.set(value.subarray(0, headerBytes), 0);
  out.set(resealed, headerBytes);
  return out;
}
