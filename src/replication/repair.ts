/**
 * Background repair of the register (DESIGN §8: it copies committed values only). A commit marker that did not
 * reach a replica is sent again on every pass until it does; once after a start and after every map change, every
 * committed value this node holds is copied to the key's other replicas.
 */
import type { SealedAcceptorStore } from './acceptor-store.js';
import type { Placement } from './cluster-map.js';
import type { RegisterTransport } from './proposer.js';

/** Undelivered commit markers remembered; beyond this, repair falls back to a full pass. */
const MAX_UNDELIVERED = 100_000;
const REQUEST_TIMEOUT_MS = 2_000;

export class Repair {
  readonly #nodeId: string;
  readonly #acceptorStore: SealedAcceptorStore;
  /** Key → value and the replicas still missing its commit marker. */
  readonly #undelivered = new Map<string, { value: Uint8Array; to: Set<string> }>();
  #fullPassDue = true;

  constructor(options: { nodeId: string; acceptorStore: SealedAcceptorStore }) {
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
    entry.to.add(to);
    this.#undelivered.set(key, entry);
  }

  /** The placement changed: look at every key once more. */
  placementChanged(): void {
    this.#fullPassDue = true;
  }

  /**
   * One pass under `placement`: resends the undelivered markers whose replicas are live, then, when due, copies
   * every committed value held here. `current` says whether the placement is still the node's.
   */
  async pass(options: { placement: Placement; live: ReadonlySet<string>; transport: RegisterTransport; keys: string[]; current: () => boolean }): Promise<void> {
    const { placement, live, transport } = options;
    const send = async (key: string, value: Uint8Array, to: Iterable<string>): Promise<boolean> => {
      const replicas = new Set(placement.replicaSets(key).flat());
      const targets = [...to].filter((n) => n !== this.#nodeId && replicas.has(n));
      const results = await Promise.allSettled(targets.map((n) => transport.request(n, { t: 'commit', key, value }, REQUEST_TIMEOUT_MS)));
      return results.every((r) => r.status === 'fulfilled');
    };
    for (const [key, entry] of [...this.#undelivered]) {
      if (![...entry.to].some((n) => live.has(n))) continue;
      if (await send(key, entry.value, entry.to)) this.#undelivered.delete(key);
    }
    if (!this.#fullPassDue) return;
    let complete = true;
    for (const key of options.keys) {
      if (!options.current()) return;
      const state = await this.#acceptorStore.load(key).catch(() => undefined);
      if (state?.committed && !(await send(key, state.committed, placement.replicaSets(key).flat()))) complete = false;
    }
    if (complete) this.#fullPassDue = false;
  }
}
