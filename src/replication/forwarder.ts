/**
 * Forwarding: how a node that is not a replica of a key runs an operation on one that is, within a deadline
 * whatever the network does.
 *
 * - **Whom to ask.** The key's replicas that answer this node directly first, then those alive only by relayed
 *   heartbeats, then the rest (`Reachability`); never one found restored.
 * - **Hedged.** The next replica is asked too when one has not answered within `hedgeAfterMs`; the first answer
 *   wins (`hedged.ts`); every attempt shares one deadline (the replica's own deadline plus a request timeout). A
 *   replica still silent at the hedge delay is asked last from then on and has its connection checked.
 * - **Outcome.** A replica that answered with an error has the last word. When none answered, a get-or-create or an
 *   erasure that some replica may have run is `ERR_OUTCOME_UNKNOWN`; anything else `ERR_UNAVAILABLE`.
 *
 * Reachability learns from every direct request this node sends (`noteReply`), forwarded or not.
 */
import { monotonicClock } from '../clock.js';
import { KeymeshError } from '../errors.js';
import type { RegisterOutcome } from '../register/proposer.js';
import { forwardTimeoutMs, type Timing } from '../timing.js';
import type { CoordReply, CoordRequest } from './coord.js';
import { hedged } from './hedged.js';
import { Reachability } from './reachability.js';
import { PeerUnreachableError } from './unreachable.js';

export interface ForwarderOptions {
  readonly timing: Pick<
    Timing,
    'hedgeAfterMs' | 'unansweredRetryAfterMs' | 'registerDeadlineMs' | 'registerRequestTimeoutMs'
  >;
  /** Sends a coordination request to a node (`Coord.request`). */
  readonly request: (to: string, request: CoordRequest, timeoutMs: number) => Promise<CoordReply>;
  /** Members alive by heartbeat. */
  readonly alive: () => ReadonlySet<string>;
  /** Whether a node was found restored (its votes do not count). */
  readonly isRestored: (nodeId: string) => boolean;
  /** Checks a node's connection, closing it when it no longer answers. */
  readonly probe: (nodeId: string) => void;
}

export class Forwarder {
  readonly #o: ForwarderOptions;
  readonly #reachability: Reachability;

  constructor(options: ForwarderOptions) {
    this.#o = options;
    this.#reachability = new Reachability({
      clock: monotonicClock,
      retryAfterMs: options.timing.unansweredRetryAfterMs,
    });
  }

  /** A direct request to `nodeId` was answered, or not (then its connection is checked). */
  noteReply(nodeId: string, answered: boolean): void {
    if (answered) return this.#reachability.answered(nodeId);
    this.#reachability.unanswered(nodeId);
    this.#o.probe(nodeId);
  }

  /** Members alive by heartbeat that also answer directly (repair waits for the others, as for a down one). */
  answering(): Set<string> {
    return new Set([...this.#o.alive()].filter((n) => !this.#reachability.isUnanswering(n)));
  }

  /** Whether every one of `nodes` but `self` is alive and answering (a fast register round may succeed). */
  allAnswer(nodes: readonly string[], self: string): boolean {
    const answering = this.answering();
    return nodes.every((n) => n === self || answering.has(n));
  }

  /** Runs `op` on one of `replicas` (see the top of this file). */
  forward(
    op: 'get-or-create' | 'read' | 'erase',
    key: string,
    candidate: Uint8Array | undefined,
    replicas: readonly string[],
  ): Promise<RegisterOutcome> {
    const deadline = monotonicClock.now() + forwardTimeoutMs(this.#o.timing);
    const usable = replicas.filter((n) => !this.#o.isRestored(n));
    return hedged({
      candidates: this.#reachability.order(usable, this.#o.alive()),
      hedgeAfterMs: this.#o.timing.hedgeAfterMs,
      onSlow: (to) => this.noteReply(to, false),
      attempt: async (to) => {
        const reply = await this.#o.request(
          to,
          { t: 'op', op, key, ...(candidate ? { candidate } : {}) },
          Math.max(1, deadline - monotonicClock.now()),
        );
        if (reply.t !== 'value') throw new KeymeshError('ERR_INTERNAL', `unexpected reply ${reply.t}`);
        return { value: reply.value, roundTrips: reply.roundTrips + 1 };
      },
      isFinal: (err) => !(err instanceof PeerUnreachableError),
      exhausted: (failures) => {
        // a get-or-create or an erasure some replica may have run (sent, never answered) may have chosen a value
        const maybeRan = op !== 'read' && failures.some((f) => f instanceof PeerUnreachableError && f.maybeDelivered);
        return maybeRan
          ? new KeymeshError(
              'ERR_OUTCOME_UNKNOWN',
              `register ${key}: no replica answered in time; the value may or may not have been chosen`,
            )
          : new KeymeshError('ERR_UNAVAILABLE', `no replica of ${key} could be reached`);
      },
    });
  }
}
