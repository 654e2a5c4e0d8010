/**
 * What a stopped node's data directory holds, by management-key epoch: the epoch of every value's seal and, inside
 * register records, of every value sealed for the register. After a finished rotation it must find only the new
 * epoch (the rotation's tests and `npm run chaos -- --rotate` check it). Opens the LevelDB directory itself, so
 * the node must be stopped.
 */
import { readSealHeader, Sealer } from '../crypto/sealer.js';
import type { ManagementKey } from '../crypto/management-key.js';
import { PREFIX as REGISTER_PREFIX, SealedAcceptorStore } from '../register/acceptor-store.js';
import { withoutExpiry } from '../register/expiring.js';
import { LevelStore } from '../storage/level-store.js';
import { SealedStore } from '../storage/sealed-store.js';

/** Every epoch found in the database at `dbDir`, opened with `key` (and `others`, when the node holds several). */
export async function epochsAtRest(
  dbDir: string,
  key: ManagementKey,
  others: readonly ManagementKey[] = [],
): Promise<Set<number>> {
  const level = new LevelStore(dbDir);
  await level.start();
  const found = new Set<number>();
  try {
    const acceptors = new SealedAcceptorStore(new SealedStore(level, new Sealer(key, 'scan', others)));
    for await (const [k, raw] of level.entries('')) {
      found.add(readSealHeader(raw, k).epoch);
      if (!k.startsWith(REGISTER_PREFIX)) continue;
      const state = await acceptors.load(k.slice(REGISTER_PREFIX.length));
      for (const value of [state?.committed, state?.accepted?.value]) {
        if (!value) continue;
        try {
          found.add(readSealHeader(withoutExpiry(value)).epoch);
        } catch {
          // not sealed for the register (a replay record, the map, an operator's value)
        }
      }
    }
  } finally {
    await level.stop();
  }
  return found;
}
