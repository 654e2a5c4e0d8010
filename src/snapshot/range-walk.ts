/**
 * The walk behind a snapshot: every committed register value of the cluster, each once, in key order, read from
 * the replicas that hold it.
 *
 * Every member of the map is paged through (`dump-page.ts`: each answers only for the keys it is a replica of, so
 * a member's pages are its share of every range it replicates) and the pages are merged like sorted runs: a key
 * is decided once every member still being read has paged past it (each page's `next` is how far that member got),
 * so each member holds at most one page in memory and a key is seen from all of its replicas at once.
 *
 * Deciding a key: committed values are write-once, so the replicas that hold a value agree; if they ever disagree
 * (a replica's disk was altered, or a value type this code does not know changed it), the value held by the most
 * replicas wins, and a tie is settled by a register read. A key that only holds an accepted value on the replicas
 * that answered may have been chosen (its proposer stopped before its commit marker spread) and an answer may have
 * been given with it, so it is finished with a register round (`finish`) and the chosen value is carried; expiring
 * keys are left out of that (their expiry travels in the value, which a read gives back without it), they are
 * replay records and token-store entries whose loss costs at most one more replay check.
 *
 * Consistency: every value chosen before the walk starts is in the snapshot (it is committed on, or finished
 * from, a replica that answers); values chosen during the walk may or may not be. A member that does not answer
 * is left out; with fewer than the replication factor of them every key still has a replica that answered, beyond
 * that the walk fails with `ERR_UNAVAILABLE`.
 */
import { isErasableKey } from '../register/tombstone.js';
import { KeymeshError } from '../errors.js';

/** One member's page, as the `dumped` coordination reply carries it. */
export interface DumpedPage {
  readonly entries: ReadonlyArray<readonly [string, Uint8Array]>;
  readonly pending: readonly string[];
  readonly next?: string | undefined;
}

/** What the walk needs. */
export interface WalkOptions {
  /** The map's members, this node included. */
  readonly members: readonly string[];
  /** The replicas of `key` in the map the walk runs in. */
  replicasOf(key: string): readonly string[];
  /** How many members may fail to answer before the walk gives up (replication factor − 1). */
  readonly tolerated: number;
  /** Member `nodeId`'s page after `after`; throws when it cannot be had. */
  page(nodeId: string, after: string | undefined): Promise<DumpedPage>;
  /** A register round on `key` (a non-expiring key): the chosen value, or undefined when none was. */
  finish(key: string): Promise<Uint8Array | undefined>;
  isExpiring(key: string): boolean;
  /** Hears of a member left out. */
  onUnreachable?(nodeId: string, err: unknown): void;
}

/** One member's place in the walk. */
interface Cursor {
  readonly nodeId: string;
  items: Array<{ key: string; value?: Uint8Array }>;
  after: string | undefined;
  done: boolean;
}

/**
 * The committed register values, in key order.
 * @throws KeymeshError `ERR_UNAVAILABLE` when more members than `tolerated` do not answer.
 */
export async function* walkRegisters(o: WalkOptions): AsyncGenerator<{ key: string; value: Uint8Array }> {
  const cursors: Cursor[] = o.members.map((nodeId) => ({ nodeId, items: [], after: undefined, done: false }));
  let failed = 0;
  for (;;) {
    await Promise.all(
      cursors
        .filter((c) => !c.done && c.items.length === 0)
        .map(async (c) => {
          try {
            const page = await o.page(c.nodeId, c.after);
            // a member whose cursor does not move on would keep the walk going for ever
            if (page.next !== undefined && c.after !== undefined && page.next <= c.after)
              throw new KeymeshError(
                'ERR_BAD_MESSAGE',
                `member ${c.nodeId} answered a page that does not move past ${c.after}`,
              );
            c.items = merged(page);
            c.after = page.next;
            c.done = page.next === undefined;
          } catch (err) {
            c.done = true;
            failed += 1;
            o.onUnreachable?.(c.nodeId, err);
          }
        }),
    );
    if (failed > o.tolerated)
      throw new KeymeshError(
        'ERR_UNAVAILABLE',
        `${failed} members did not answer the snapshot; more than ${o.tolerated} leaves keys with no replica read`,
      );
    const open = cursors.filter((c) => !c.done);
    if (open.length === 0 && cursors.every((c) => c.items.length === 0)) return;
    // keys up to the least far member's position are seen from every member that holds them
    // biome-ignore lint/complexity/useMathMinMax: the positions are strings (register keys), which Math.min cannot compare
    const bound = open.length === 0 ? undefined : open.map((c) => c.after!).reduce((a, b) => (a < b ? a : b));
    const ready = new Map<string, Array<{ nodeId: string; value?: Uint8Array }>>();
    for (const c of cursors) {
      const cut = bound === undefined ? c.items.length : countUpTo(c.items, bound);
      for (const item of c.items.slice(0, cut)) {
        const seen = ready.get(item.key) ?? [];
        seen.push({ nodeId: c.nodeId, ...(item.value ? { value: item.value } : {}) });
        ready.set(item.key, seen);
      }
      c.items = c.items.slice(cut);
    }
    for (const key of [...ready.keys()].sort()) {
      const value = await decide(o, key, ready.get(key)!);
      if (value) yield { key, value };
    }
  }
}

/** The value to carry for `key`, from what its replicas said. */
async function decide(
  o: WalkOptions,
  key: string,
  seen: ReadonlyArray<{ nodeId: string; value?: Uint8Array }>,
): Promise<Uint8Array | undefined> {
  // a user's secret may have been erased by a tombstone whose commit has not reached every replica yet: what the
  // register answers a reader (a quorum read, which honours a tombstone) is what the snapshot carries
  if (isErasableKey(key)) return o.finish(key);
  const replicas = new Set(o.replicasOf(key));
  const votes = new Map<string, { value: Uint8Array; count: number }>();
  for (const s of seen) {
    if (!s.value || !replicas.has(s.nodeId)) continue;
    const id = Buffer.from(s.value).toString('base64');
    const vote = votes.get(id) ?? { value: s.value, count: 0 };
    vote.count += 1;
    votes.set(id, vote);
  }
  const ranked = [...votes.values()].sort((a, b) => b.count - a.count);
  const tied = ranked.length > 1 && ranked[0]!.count === ranked[1]!.count;
  if (ranked.length > 0 && (!tied || o.isExpiring(key))) return ranked[0]!.value;
  if (o.isExpiring(key)) return undefined;
  // pending everywhere it was seen, or a tie: what the register chooses is what a reader would be answered
  return (await o.finish(key)) ?? ranked[0]?.value;
}

/** A page's committed values and pending keys as one sorted list. */
function merged(page: DumpedPage): Cursor['items'] {
  const items: Cursor['items'] = [
    ...page.entries.map(([key, value]) => ({ key, value })),
    ...page.pending.map((key) => ({ key })),
  ];
  return items.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** How many of the sorted `items` are at or below `bound`. */
function countUpTo(items: Cursor['items'], bound: string): number {
  let n = 0;
  while (n < items.length && items[n]!.key <= bound) n++;
  return n;
}
