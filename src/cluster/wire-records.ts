import type { Sealer } from '../crypto/sealer.js';
import { KeymeshError } from '../errors.js';
import type { KeyEntry } from '../keyring/key-entry.js';
import { decodeKeyRecord, encodeKeyRecord, type KeyRecord } from '../keyring/key-record.js';
import { wireRecordKey } from './messages.js';

/** Seals a key record for the wire (private half included, under the management key). */
export function sealRecord(sealer: Sealer, key: KeyEntry): Uint8Array {
  return sealer.seal(wireRecordKey(key.kid), encodeKeyRecord(key.toRecord()));
}

/**
 * Opens and validates a key record from the wire.
 * @throws KeymeshError `ERR_BAD_MESSAGE` when it does not open, does not decode, or names another kid.
 */
export function openRecord(sealer: Sealer, kid: string, sealed: Uint8Array): KeyRecord {
  try {
    const record = decodeKeyRecord(sealer.open(wireRecordKey(kid), sealed), `wire:${kid}`);
    if (record.kid !== kid) throw new KeymeshError('ERR_BAD_MESSAGE', `record names kid ${record.kid}, message ${kid}`);
    return record;
  } catch (err) {
    if (err instanceof KeymeshError && err.code === 'ERR_BAD_MESSAGE') throw err;
    throw new KeymeshError('ERR_BAD_MESSAGE', `key record ${kid} from the wire is invalid`, { cause: err });
  }
}
