/**
 * Direct reachability of peers, as this node's own requests find it. Heartbeats say a node is alive, but they are
 * gossip: relayed by others, they keep a node "alive" across a one-way cut or a bridge while every direct request
 * to it vanishes. So whom to ask is chosen from both: a node whose last direct request went unanswered is
 * *unanswering* until one is answered again, and is asked last. The mark fades after `retryAfterMs`, so one
 * request then probes whether the path has healed (and marks it again if not).
 *
 * Time comes from the injected monotonic clock; nothing here reads the wall clock.
 */
import type { Clock } from '../clock.js';
import { DEFAULT_TIMING } from '../timing.js';

/** How long an unanswered node is asked last before it gets another try. Default is 5000 (5 seconds). */
export const UNANSWERED_RETRY_AFTER_MS = DEFAULT_TIMING.unansweredRetryAfterMs;
/** Nodes remembered (a map's members; far more than any cluster). Default is 4096. */
const NODES_REMEMBERED = 4_096;

export class Reachability {
  readonly #clock: Clock;
  readonly #retryAfterMs: number;
  /** Node id → when its last direct request went unanswered (absent: answered last, or never asked). */
  readonly #unanswered = new Map<string, number>();

  constructor(options: { clock: Clock; retryAfterMs?: number }) {
    this.#clock = options.clock;
    this.#retryAfterMs = options.retryAfterMs ?? UNANSWERED_RETRY_AFTER_MS;
  }

  /** A direct request to `nodeId` was answered (with anything, an error included). */
  answered(nodeId: string): void {
    this.#unanswered.delete(nodeId);
  }

  /** A direct request to `nodeId` could not be sent or was not answered in time. */
  unanswered(nodeId: string): void {
    this.#unanswered.delete(nodeId);
    this.#unanswered.set(nodeId, this.#clock.now());
    if (this.#unanswered.size > NODES_REMEMBERED) this.#unanswered.delete(this.#unanswered.keys().next().value!);
  }

  /** Whether `nodeId`'s last direct request, less than `retryAfterMs` ago, went unanswered. */
  isUnanswering(nodeId: string): boolean {
    const at = this.#unanswered.get(nodeId);
    return at !== undefined && this.#clock.now() - at < this.#retryAfterMs;
  }

  /**
   * `nodes` in the order to ask them: alive by heartbeat and answering first, then alive but unanswering, then the
   * rest; the order within each group is kept.
   */
  order(nodes: readonly string[], alive: ReadonlySet<string>): string[] {
    const rank = (n: string) => (alive.has(n) ? (this.isUnanswering(n) ? 1 : 0) : 2);
    return nodes
      .map((n, i) => ({ n, i, r: rank(n) }))
      .sort((a, b) => a.r - b.r || a.i - b.i)
      .map((x) => x.n);
  }
}
