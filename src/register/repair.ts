/**
 * Background repair of the register (DESIGN §8: it copies committed values only). Once after a start and after
 * every map change, every committed value this node holds is copied to the key's other replicas. Repair remembers
 * what did not arrive, per key and replica (a commit marker of an operation, or a copy of that full pass), and
 * sends just that again, to the replicas that are live, on every pass until it arrives: the steady-state work
 * follows what replicas lack, not what the node holds, even while a member is down. Beyond `MAX_UNDELIVERED`
 * keys it falls back to one more full pass. The agreement role runs a pass every `repairIntervalMs` while the map
 * is stable, and counts as live only replicas that answer this node directly (alive by relayed heartbeats is not
 * enough).
 *
 * Tombstones (`tombstone.ts`) need nothing more: a replica that holds one copies it like any committed value, and
 * the acceptor's commit rule lets it replace a stale value and never be replaced by one.
 */
import { DEFAULT_TIMING } from '../timing.js';
import type { SealedAcceptorStore } from './acceptor-store.js';
import type { Placement } from '../cluster-map/cluster-map.js';
import type { RegisterTransport } from './proposer.js';
import { isTombstone, tombstone } from './tombstone.js';

/** Undelivered commit markers remembered; beyond this, repair falls back to a full pass. */
const MAX_UNDELIVERED = 100_000;

export class Repair {
  readonly #nodeId: string;
  readonly #acceptorStore: SealedAcceptorStore;
  /** Key → value and the replicas still missing its commit marker. */
  readonly #undelivered = new Map<string, { value: Uint8Array; to: Set<string> }>();
  #fullPassDue = true;
  readonly #requestTimeoutMs: number;

  /** `requestTimeoutMs`: how long one copy to one replica may take. Default is 2000 (2 seconds). */
  constructor(options: { nodeId: string; acceptorStore: SealedAcceptorStore; requestTimeoutMs?: number }) {
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_TIMING.coordRequestTimeoutMs;
    this.#nodeId = options.nodeId;
    this.#acceptorStore = options.acceptorStore;
  }

  /** A commit marker for `key` did not reach `to`. */
  noteUndelivered(key: string, to: string, value: Uint8Array): void {
    if (this.#undelivered.size >= MAX_UNDELIVERED) {
      this.#fullPassDue = true;
      return;
    }
    const entry = this.#undelivered.get(key) ?? { value, to: new Set<string>() };
    // a tombstone replaces any value still on its way (the old value must not travel on, and the tombstone
    // replaces it wherever it arrived)
    if (isTombstone(value)) entry.value = value;
    entry.to.add(to);
    this.#undelivered.set(key, entry);
  }

  /** `key`'s value was erased on this node: an old value of it still on its way travels no more, its tombstone does. */
  erased(key: string): void {
    const entry = this.#undelivered.get(key);
    if (entry && !isTombstone(entry.value)) entry.value = tombstone();
  }

  /** The placement changed: look at every key once more. */
  placementChanged(): void {
    this.#fullPassDue = true;
  }

  /**
   * One pass under `placement`: resends the undelivered markers whose replicas are live, then, when due, copies
   * every committed value held here. `current` says whether the placement is still the node's.
   */
  async pass(options: {
    placement: Placement;
    live: ReadonlySet<string>;
    transport: RegisterTransport;
    keys: string[];
    current: () => boolean;
  }): Promise<void> {
    const { placement, live, transport } = options;
    /** Sends `value` to those of `to` that are `key`'s replicas; resolves with the ones it did not reach. */
    const send = async (key: string, value: Uint8Array, to: Iterable<string>): Promise<string[]> => {
      const replicas = new Set(placement.replicaSets(key).flat());
      const targets = [...to].filter((n) => n !== this.#nodeId && replicas.has(n));
      const results = await Promise.allSettled(
        targets.map((n) => transport.request(n, { t: 'commit', key, value }, this.#requestTimeoutMs)),
      );
      return targets.filter((_, i) => results[i]!.status === 'rejected');
    };
    for (const [key, entry] of [...this.#undelivered]) {
      // a replica that is down is not asked again until it is back
      const reachable = [...entry.to].filter((n) => live.has(n));
      if (reachable.length === 0) continue;
      // the value as it is stored now: a management-key rotation may have sealed it again since it was noted
      const stored = (await this.#acceptorStore.load(key).catch(() => undefined))?.committed;
      const missed = new Set(await send(key, stored ?? entry.value, reachable));
      for (const n of reachable) if (!missed.has(n)) entry.to.delete(n);
      if (entry.to.size === 0) this.#undelivered.delete(key);
    }
    if (!this.#fullPassDue) return;
    // once per start and map change: every committed value to its replicas; what does not arrive is remembered per
    // replica and sent again by the passes above, so no value is sent twice to a replica that has it
    this.#fullPassDue = false;
    for (const key of options.keys) {
      if (!options.current()) {
        this.#fullPassDue = true;
        return;
      }
      const state = await this.#acceptorStore.load(key).catch(() => undefined);
      // an expired record is the sweep's, not worth a copy
      if (!state?.committed || this.#acceptorStore.isExpired(key, state.committed)) continue;
      const replicas = placement
        .replicaSets(key)
        .flat()
        .filter((n) => n !== this.#nodeId);
      const missed = [
        ...replicas.filter((n) => !live.has(n)),
        ...(await send(
          key,
          state.committed,
          replicas.filter((n) => live.has(n)),
        )),
      ];
      for (const to of missed) this.noteUndelivered(key, to, state.committed);
    }
  }
}
