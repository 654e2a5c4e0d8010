/**
 * Faults a node injects into itself, for tests and chaos runs only. A node builds this object only when started
 * with `--allow-fault-injection`; without the flag there is nothing to switch on, and `/v1/faults` refuses.
 *
 * - **Partition:** peers on the block list are refused by the libp2p connection gater (dials both ways) and
 *   their open connections are closed. Every kind of traffic between nodes (gossip, key sync, register and
 *   coordination messages, forwarded operations) runs over libp2p, so this cuts all of it alike; the nodes' HTTP
 *   APIs stay reachable for clients, as in a network split between datacenters.
 * - **Silent peers:** register and coordination requests to peers on the mute list are never sent (they time out)
 *   and requests from them are never answered, while gossip still flows: what a node sees across a bridge or a
 *   one-way cut, where relayed heartbeats say "alive" and every direct request vanishes.
 * - **Clock skew:** the node's clock (keys, tokens, revocations, membership all read it) runs `clockOffsetMs`
 *   ahead (or behind).
 * - **Kill after accept:** when this node's proposal for the named register key has been accepted by a majority,
 *   the node answers and then dies (SIGKILL) before it sends the commit marker.
 * - **Broken replication:** every register operation is run with this node as the only replica. It exists to
 *   prove that the chaos checker catches a broken register (two nodes give one user two secrets).
 */
import type { Clock } from '../clock.js';

/** What `/v1/faults` shows and sets. */
export interface FaultState {
  readonly blockPeers: readonly string[];
  readonly mutePeers: readonly string[];
  readonly clockOffsetMs: number;
  readonly killAfterAccept: string | null;
  readonly breakReplication: boolean;
}

/** The faults of one node, changed at run time through `/v1/faults`. */
export class FaultInjection {
  #offsetMs = 0;
  #blocked: ReadonlySet<string> = new Set();
  #muted: ReadonlySet<string> = new Set();
  #killAfterAccept: string | undefined;
  #breakReplication: boolean;
  #onBlock: (peers: readonly string[]) => Promise<void> = async () => undefined;

  /** The node's clock: the wall clock plus the injected offset. */
  readonly clock: Clock = { now: () => Date.now() + this.#offsetMs };

  constructor(initial: { killAfterAccept?: string; breakReplication?: boolean } = {}) {
    this.#killAfterAccept = initial.killAfterAccept;
    this.#breakReplication = initial.breakReplication ?? false;
  }

  /** The faults asked for through the environment: `KEYMESH_FAULT_KILL_AFTER_ACCEPT`, `KEYMESH_FAULT_BREAK_REPLICATION=1`. */
  static fromEnv(env: Readonly<Record<string, string | undefined>>): FaultInjection {
    const key = env['KEYMESH_FAULT_KILL_AFTER_ACCEPT'];
    return new FaultInjection({
      ...(key ? { killAfterAccept: key } : {}),
      breakReplication: env['KEYMESH_FAULT_BREAK_REPLICATION'] === '1',
    });
  }

  /** Whether connections to and from libp2p peer `peerId` are refused. */
  isBlocked(peerId: string): boolean {
    return this.#blocked.has(peerId);
  }

  /** Whether register and coordination requests to and from libp2p peer `peerId` silently vanish. */
  isMuted(peerId: string): boolean {
    return this.#muted.has(peerId);
  }

  /** The register key whose commit this node dies before, if any. */
  get killAfterAccept(): string | undefined {
    return this.#killAfterAccept;
  }

  get breakReplication(): boolean {
    return this.#breakReplication;
  }

  /** What runs when the block list changes (the node closes the connections to blocked peers). */
  onBlock(hook: (peers: readonly string[]) => Promise<void>): void {
    this.#onBlock = hook;
  }

  /** Applies the fields given; the others stay as they are. Resolves once blocked peers' connections are closed. */
  async set(change: {
    blockPeers?: readonly string[];
    mutePeers?: readonly string[];
    clockOffsetMs?: number;
    killAfterAccept?: string | null;
  }): Promise<FaultState> {
    if (change.clockOffsetMs !== undefined) this.#offsetMs = change.clockOffsetMs;
    if (change.mutePeers !== undefined) this.#muted = new Set(change.mutePeers);
    if (change.killAfterAccept !== undefined) this.#killAfterAccept = change.killAfterAccept ?? undefined;
    if (change.blockPeers !== undefined) {
      this.#blocked = new Set(change.blockPeers);
      await this.#onBlock([...this.#blocked]);
    }
    return this.state();
  }

  state(): FaultState {
    return {
      blockPeers: [...this.#blocked],
      mutePeers: [...this.#muted],
      clockOffsetMs: this.#offsetMs,
      killAfterAccept: this.#killAfterAccept ?? null,
      breakReplication: this.#breakReplication,
    };
  }
}
