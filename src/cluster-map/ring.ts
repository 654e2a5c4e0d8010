/**
 * The ring that places replicated values (DESIGN §7): consistent hashing (`hashring`, ketama-style virtual nodes,
 * SHA-256) over the cluster map's members (in a stable map, all normal). A key's replicas are the `replicationFactor`
 * distinct members that follow it on the ring, so adding or removing one member moves only the keys next to it.
 *
 * A transitional map places every key twice (`Placement` in `cluster-map.ts`): on the ring of its normal and
 * leaving members (before) and on that of its normal and joining members (after); a key whose two replica sets
 * differ is moving. `/v1/cluster` shows each member's share of the ring after the change ({@link Ring.shares}).
 */
import HashRing from 'hashring';

/** Virtual nodes per member: enough points for an even spread on small clusters. */
export const RING_VNODES = 160;

/** An immutable ring over a set of member ids. */
export class Ring {
  readonly #ring: HashRing | undefined;
  readonly members: readonly string[];

  constructor(members: readonly string[]) {
    this.members = [...new Set(members)].sort();
    const servers: Record<string, { vnodes: number }> = {};
    for (const m of this.members) servers[m] = { vnodes: RING_VNODES };
    this.#ring = this.members.length === 0 ? undefined : new HashRing(servers, 'sha256', { 'max cache size': 10_000 });
  }

  /** The replicas of `key`: up to `replicationFactor` distinct members, the key's owner first. */
  replicas(key: string, replicationFactor: number): string[] {
    if (!this.#ring) return [];
    return this.#ring.range(key, Math.min(replicationFactor, this.members.length), true);
  }

  /** Each member's share of `sample` keys as owner (for `/v1/cluster`). */
  shares(sample = 4096): Record<string, number> {
    const counts: Record<string, number> = Object.fromEntries(this.members.map((m) => [m, 0]));
    for (let i = 0; i < sample; i++) {
      const owner = this.replicas(`share-probe/${i}`, 1)[0];
      if (owner !== undefined) counts[owner]! += 1;
    }
    return Object.fromEntries(Object.entries(counts).map(([m, c]) => [m, c / sample]));
  }
}
