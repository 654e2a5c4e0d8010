/**
 * The node's incarnation: a counter stored in the node's own store and raised by one at every start, so members
 * tell a restarted node's heartbeats from its previous life's (heartbeats are ordered by incarnation, then by
 * sequence number). The write is synced before the node sends its first heartbeat.
 */
import type { SealedStore } from '../storage/sealed-store.js';

const INCARNATION_KEY = 'node/incarnation';

/** Raises the stored incarnation by one (from 0 when none is stored) and resolves with the new value. */
export async function bumpIncarnation(store: SealedStore): Promise<number> {
  const stored = await store.get(INCARNATION_KEY);
  const next = (stored && stored.length === 8 ? Number(stored.readBigUInt64BE()) : 0) + 1;
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(next));
  await store.put(INCARNATION_KEY, b, { sync: true });
  return next;
}
