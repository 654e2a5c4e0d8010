/**
 * The replica side of a snapshot: one page of this node's committed register values, answering a coordination
 * `dump` request (`coord.ts`).
 *
 * A page holds the keys after the request's cursor, in key order (JavaScript string order, the same on every node),
 * of which this node is a replica in the current map: their committed values, and the keys that hold only an
 * accepted value (`pending`: possibly chosen, the snapshot finishes them with a round). Map registers, expired
 * records and keys of other replicas are left out. The page stops at `MAX_DUMP_ENTRIES` keys examined or
 * `DUMP_PAGE_BYTES` of keys and values, whichever comes first; `next` is the last key examined (the cursor of the
 * next page), absent when nothing follows.
 *
 * Finding the next keys is one pass over the in-memory key set keeping the smallest few (no sort of the whole
 * set), so a page costs O(keys held) and a full walk O(keys² / page), which stays well under the transfer time for
 * the sizes a register holds. The request names the map epoch it was planned in; a replica in another epoch
 * refuses (`ERR_UNAVAILABLE`), so a page never mixes two placements.
 */
import type { Placement } from '../cluster-map/cluster-map.js';
import { KeymeshError } from '../errors.js';
import type { AcceptorState } from '../register/acceptor.js';
import { MAX_DUMP_ENTRIES, type CoordReply, type CoordRequest } from '../replication/coord.js';

/** Most bytes of keys and values in one page: a page fits a coordination message with room for its envelope. */
export const DUMP_PAGE_BYTES = 192 * 1024;
import { MAP_PREFIX } from '../replication/operations.js';
/** The epochs a management-key rotation claimed (`src/management-key/rotation.ts`): a new cluster claims its own. */
const MKEY_PREFIX = 'mkey/';

/** What a page is read from: an acceptor's state store (`SealedAcceptorStore`). */
export interface DumpSource {
  keys(): string[];
  load(key: string): Promise<AcceptorState | undefined>;
  isExpired(key: string, value: Uint8Array): boolean;
}

/**
 * Answers `request` from `store` under `placement` (this node's current one).
 * @throws KeymeshError `ERR_UNAVAILABLE` without a map, or when the request was planned in another map epoch.
 */
export async function dumpPage(
  o: { store: DumpSource; placement: Placement | undefined; nodeId: string },
  request: Extract<CoordRequest, { t: 'dump' }>,
): Promise<Extract<CoordReply, { t: 'dumped' }>> {
  const { placement } = o;
  if (!placement || placement.map.epoch !== request.epoch) {
    throw new KeymeshError(
      'ERR_UNAVAILABLE',
      `node ${o.nodeId} is in cluster map ${placement?.map.epoch ?? 'none'}, not ${request.epoch}`,
    );
  }
  const keys = smallestAfter(o.store.keys(), request.after, MAX_DUMP_ENTRIES);
  const entries: Array<[string, Uint8Array]> = [];
  const pending: string[] = [];
  let bytes = 0;
  let last: string | undefined;
  for (const key of keys) {
    if (!placement.replicaSets(key).flat().includes(o.nodeId)) {
      last = key;
      continue;
    }
    const state = await o.store.load(key);
    const value = state?.committed;
    if (value && !o.store.isExpired(key, value)) {
      if (entries.length > 0 && bytes + key.length + value.byteLength > DUMP_PAGE_BYTES) break;
      bytes += key.length + value.byteLength;
      entries.push([key, value]);
    } else if (!value && state?.accepted) {
      pending.push(key);
    }
    last = key;
  }
  const more = last !== undefined && (last !== keys[keys.length - 1] || keys.length === MAX_DUMP_ENTRIES);
  return { t: 'dumped', entries, pending, ...(more ? { next: last } : {}) };
}

/**
 * The `n` smallest of `keys` after `after` (map and management-key registers excluded), in order. Keeps at most 2n candidates: when
 * full, it sorts them, keeps the n smallest, and from then on skips anything not below the n-th.
 */
export function smallestAfter(keys: Iterable<string>, after: string | undefined, n: number): string[] {
  let picked: string[] = [];
  let bound: string | undefined;
  for (const key of keys) {
    if (
      (after !== undefined && key <= after) ||
      (bound !== undefined && key >= bound) ||
      key.startsWith(MAP_PREFIX) ||
      key.startsWith(MKEY_PREFIX)
    )
      continue;
    picked.push(key);
    if (picked.length >= 2 * n) {
      picked = picked.sort().slice(0, n);
      bound = picked[n - 1];
    }
  }
  return picked.sort().slice(0, n);
}
