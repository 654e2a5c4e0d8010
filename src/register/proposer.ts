/**
 * The proposer side of the per-key register: a write-once register per key over that key's replicas
 * (single-decree Paxos per key, as in CASPaxos or Cassandra's lightweight transactions).
 *
 * `getOrCreate(key, candidate)` first tries the fast round, one round trip: the candidate goes to every replica
 * as a round-0 accept without a prepare, and is chosen when every replica took it (`fast-round.ts` explains why
 * that is safe, and when a proposer skips it). Otherwise, or when it is skipped, the classic rounds decide:
 *  1. prepare with a fresh ballot (round 1 and up) on every replica; a majority must promise. A replica that
 *     already holds the commit marker answers with the chosen value, which is returned at once.
 *  2. the value to propose is the accepted value with the highest ballot among the promises, or the candidate
 *     when no promise carries one (a proposer that sees an accepted value re-proposes it); fast-round values
 *     follow `valueToPropose`;
 *  3. accept on every replica; once a majority accepted, the value is chosen: it is returned and a commit marker
 *     is sent to every replica (without waiting).
 *  A refusal (another proposer's higher ballot) restarts from 1 after a randomised back-off above that ballot.
 *
 * `read(key)` asks every replica for its state. A commit marker is served as is; no accepted value on a majority
 * means nothing was chosen yet (undefined); an accepted value without a marker is finished with a full round first.
 *
 * Erasable keys (`tombstone.ts`): `erase(key)` chooses the tombstone over whatever the key holds, in a round of its
 * own: a prepare marked `erase` (promised even over a committed value), accept of the tombstone, commit to every
 * replica. Any answer that carries the tombstone makes it the outcome of every operation: committed, it is returned
 * (and its commit markers sent again); only accepted, it is chosen by an erasure round first (a started erasure is
 * finished by whoever sees it). A committed value of an erasable key is returned only when a quorum answered the
 * phase that met it, never on a commit marker alone: a quorum's answers meet the majority that accepted any
 * tombstone, so no operation returns the old value after an erasure completed. The price is a round trip on every
 * read of a secret (which a replica holding the marker would otherwise answer from disk) and availability: a
 * proposer that reaches only a minority of the replicas fails with `ERR_UNAVAILABLE` even when they hold the value
 * (serving it would return an erased secret from replicas that missed the tombstone). The secret server loses
 * nothing by it: its exchange needs a majority anyway, for the client assertion's replay record.
 *
 * A quorum is bound to the cluster-map epoch it was computed for (`inEpoch`), and every request of the operation,
 * retries included, carries that epoch, never the node's current one: a replica that moved on refuses it, and the
 * operation runs again in the new map (`src/replication/operations.ts`). Retries once carried the current epoch while
 * still counting the old quorum, so a value could be chosen on a majority of the old replica set after its range
 * moved and be missing from the new one (found by the range-move schedules of `test/unit/register/register.test.ts`).
 *
 * Failures never guess: when a majority cannot be reached before the deadline the call fails with
 * `ERR_UNAVAILABLE` if no accept was sent, and with `ERR_OUTCOME_UNKNOWN` if one was (the value may or may not
 * have been chosen; a later call returns whatever was). A prepare round that missed its majority because replicas
 * could not be reached (`PeerUnreachableError`), with no competing ballot among the answers, ends the call at once
 * with `ERR_UNAVAILABLE`: backing off a few milliseconds does not bring a cut replica back, and the caller learns
 * in one request timeout, not the whole deadline, that nothing was proposed.
 */
import { KeymeshError } from '../errors.js';
import { DEFAULT_TIMING } from '../timing.js';
import { MAX_BALLOT_ROUND, type Ballot } from './ballot.js';
import { everyReplica, FAST_PAUSE_MS, fastOutcome, valueToPropose, type FastOutcome } from './fast-round.js';
import {
  committedIn,
  committedOf,
  gather,
  highestAccepted,
  quorumNodes,
  tombstoneIn,
  type Gathered,
  type GatherRules,
} from './gather.js';
import type { RegisterReply, RegisterRequest } from './messages.js';
import { isErasableKey, isTombstone, tombstone } from './tombstone.js';

export { quorumNodes };

/**
 * Sends one request to one replica. Rejects when the replica cannot be reached or does not answer in time.
 * `epoch` is the cluster-map epoch the request is sent in (the one its quorum was computed for); a replica in
 * another epoch refuses it. Without it the transport uses its node's current epoch.
 */
export interface RegisterTransport {
  request(to: string, request: RegisterRequest, timeoutMs: number, epoch?: number): Promise<RegisterReply>;
}

/** Time for the proposer: the clock and a sleep, injected so simulations can run on virtual time. */
export interface ProposerTimers {
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** Proposer settings (ms). */
export interface ProposerSettings {
  /** How long one request may take. Default is 1000 ms. */
  readonly requestTimeoutMs: number;
  /** How long a whole operation may take before it gives up. Default is 5000 ms. */
  readonly deadlineMs: number;
  /** Back-off after a refused round: uniform in [min, max · 2^attempt], capped at max · 8. Defaults 2 and 20 ms. */
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** Whether `getOrCreate` tries the one-round-trip fast round first. Default is true. */
  readonly fastRound: boolean;
}

/** Default proposer settings. */
export const DEFAULT_PROPOSER_SETTINGS: ProposerSettings = {
  requestTimeoutMs: DEFAULT_TIMING.registerRequestTimeoutMs,
  deadlineMs: DEFAULT_TIMING.registerDeadlineMs,
  backoffMinMs: DEFAULT_TIMING.backoffMinMs,
  backoffMaxMs: DEFAULT_TIMING.backoffMaxMs,
  fastRound: true,
};

/**
 * Who must agree: every group needs `need` positive answers from its members. One group with a majority is the
 * plain case; a moving range has two (majorities of the old and of the new replica set); genesis has one group
 * that needs every member.
 */
export interface Quorum {
  readonly groups: readonly { readonly members: readonly string[]; readonly need: number }[];
  /**
   * The cluster-map epoch the groups were computed for. Every request of the operation, retries included, is sent
   * in this epoch, so a replica that has moved on refuses it: a quorum of one map is never counted in another.
   */
  readonly epoch?: number;
  /**
   * False when proposers of one key may hold different replica sets in one epoch (genesis: each candidate names
   * the nodes it met), so a fast-round value cannot be told apart from nothing by a later prepare: such a quorum
   * always runs the classic rounds. Default is true.
   */
  readonly fastRound?: boolean;
}

/** `quorum` bound to cluster-map `epoch`. */
export function inEpoch(quorum: Quorum, epoch: number): Quorum {
  return { ...quorum, epoch };
}

/** A majority of each of `sets`. */
export function majorities(...sets: readonly (readonly string[])[]): Quorum {
  return { groups: sets.map((members) => ({ members, need: Math.floor(members.length / 2) + 1 })) };
}

/** Every member of `set`. */
export function unanimous(set: readonly string[]): Quorum {
  return { groups: [{ members: set, need: set.length }], fastRound: false };
}

/** A value and the round trips (phases sent to the replicas) it took. */
export interface RegisterOutcome {
  readonly value: Uint8Array | undefined;
  readonly roundTrips: number;
}

/** Keys whose last ballot round a proposer remembers. Default is 4096. */
export const ROUNDS_REMEMBERED = 4_096;

/** Proposes and reads values of per-key registers. */
export class Proposer {
  readonly #nodeId: string;
  readonly #transport: RegisterTransport;
  readonly #timers: ProposerTimers;
  readonly #random: () => number;
  readonly #settings: ProposerSettings;
  readonly #onUndelivered: ((key: string, to: string, value: Uint8Array) => void) | undefined;
  readonly #fastRoundTo: ((nodes: readonly string[]) => boolean) | undefined;
  /** The highest round seen or used per key, for the most recent keys (`ROUNDS_REMEMBERED`). */
  readonly #rounds = new Map<string, number>();
  /** Until when (the timers' clock) fast rounds are skipped, after one met a replica that failed. */
  #fastPausedUntil = Number.NEGATIVE_INFINITY;

  /**
   * `onUndelivered` hears of every commit marker that did not reach its replica (for repair). `fastRoundTo` says
   * whether a fast round to `nodes` may succeed (every one is alive and answering, as far as this node knows);
   * without it every fast round is tried.
   */
  constructor(options: {
    nodeId: string;
    transport: RegisterTransport;
    timers: ProposerTimers;
    random?: () => number;
    settings?: Partial<ProposerSettings>;
    onUndelivered?: (key: string, to: string, value: Uint8Array) => void;
    fastRoundTo?: (nodes: readonly string[]) => boolean;
  }) {
    this.#onUndelivered = options.onUndelivered;
    this.#fastRoundTo = options.fastRoundTo;
    this.#nodeId = options.nodeId;
    this.#transport = options.transport;
    this.#timers = options.timers;
    this.#random = options.random ?? Math.random;
    this.#settings = { ...DEFAULT_PROPOSER_SETTINGS, ...options.settings };
  }

  /**
   * The value of `key`: the one already chosen, or `candidate` if none was. `replicas` is a replica set (a majority
   * of it decides) or a {@link Quorum}.
   * @throws KeymeshError `ERR_UNAVAILABLE` (no majority reachable, nothing proposed) or `ERR_OUTCOME_UNKNOWN`.
   */
  async getOrCreate(key: string, replicas: readonly string[] | Quorum, candidate: Uint8Array): Promise<Uint8Array> {
    return (await this.propose(key, toQuorum(replicas), candidate)).value!;
  }

  /**
   * The chosen value of `key`, or undefined when none was chosen yet.
   * @throws KeymeshError `ERR_UNAVAILABLE` or `ERR_OUTCOME_UNKNOWN`, as {@link getOrCreate}.
   */
  async read(key: string, replicas: readonly string[] | Quorum): Promise<Uint8Array | undefined> {
    return (await this.readOutcome(key, toQuorum(replicas))).value;
  }

  /**
   * Replaces whatever `key` holds by the tombstone, for ever (an erasable key only); resolves with the tombstone.
   * @throws KeymeshError `ERR_INVALID_REQUEST` for a key that is not erasable; `ERR_UNAVAILABLE` or
   *   `ERR_OUTCOME_UNKNOWN`, as {@link getOrCreate} (after an unknown outcome the next operation that sees the
   *   tombstone anywhere finishes the erasure).
   */
  async erase(key: string, replicas: readonly string[] | Quorum): Promise<RegisterOutcome> {
    if (!isErasableKey(key))
      throw new KeymeshError('ERR_INVALID_REQUEST', `register ${key.split('/')[0]}/…: its values cannot be erased`);
    return this.propose(key, toQuorum(replicas), tombstone(), 0, true);
  }

  /** {@link getOrCreate} with the round trips it took; with `erase`, {@link erase}. */
  async propose(
    key: string,
    quorum: Quorum,
    candidate: Uint8Array,
    roundTripsSoFar = 0,
    erase = false,
  ): Promise<RegisterOutcome> {
    const nodes = quorumNodes(quorum);
    const erasable = isErasableKey(key);
    // what decides at once: any commit marker, or on an erasable key the tombstone's (an erasure round ignores the
    // value it replaces; any other round returns a committed value only from a quorate prepare)
    const decisive = (value: Uint8Array) => !erasable || isTombstone(value);
    const deadline = this.#timers.now() + this.#settings.deadlineMs;
    let proposed = false;
    let roundTrips = roundTripsSoFar;
    if (!erase && !erasable && roundTripsSoFar === 0 && this.#fastRoundAllowed(quorum)) {
      roundTrips += 1;
      const fast = await this.#fastRound(key, quorum, candidate);
      if (fast.chosen) return { value: this.#finish(key, nodes, fast.chosen, quorum.epoch), roundTrips };
      proposed = fast.delivered;
    }
    for (let attempt = 0; this.#timers.now() < deadline; attempt++) {
      const ballot: Ballot = [this.#nextRound(key), this.#nodeId];
      roundTrips += 1;
      const prepared = await this.#gather(
        quorum,
        { t: 'prepare', key, ballot, ...(erase ? { erase: true } : {}) },
        {
          ok: (r) => r.t === 'promise',
          decides: (r) => decides(committedOf(r), decisive),
        },
      );
      const chosen =
        committedIn(prepared, decisive) ?? (erase || !prepared.quorate ? undefined : committedIn(prepared));
      if (!erase && erasable && !isTombstone(chosen) && tombstoneIn(prepared) === 'accepted') {
        // an erasure under way: finish it (the tombstone beats any value; it needs a round marked `erase`)
        erase = true;
        candidate = tombstone();
        continue;
      }
      if (chosen) return { value: this.#finish(key, nodes, chosen, quorum.epoch), roundTrips };
      if (!prepared.quorate) {
        if (prepared.unreachable > 0 && prepared.negative.length === 0) break;
        await this.#backOff(key, prepared, attempt);
        continue;
      }
      const value = erase ? candidate : valueToPropose(prepared, quorum, candidate);
      proposed = true;
      roundTrips += 1;
      // the prepare heard a quorum: a commit marker met now was chosen before or during this call, either is linearizable
      const counts = erase ? decisive : () => true;
      const accepted = await this.#gather(
        quorum,
        { t: 'accept', key, ballot, value },
        { ok: (r) => r.t === 'accepted', decides: (r) => decides(committedOf(r), counts) },
      );
      const chosenMeanwhile = committedIn(accepted, decisive) ?? committedIn(accepted, counts);
      if (chosenMeanwhile) return { value: this.#finish(key, nodes, chosenMeanwhile, quorum.epoch), roundTrips };
      if (accepted.quorate) return { value: this.#finish(key, nodes, value, quorum.epoch), roundTrips };
      await this.#backOff(key, accepted, attempt);
    }
    throw proposed
      ? new KeymeshError(
          'ERR_OUTCOME_UNKNOWN',
          `register ${key}: no majority confirmed before the deadline; the value may or may not have been chosen`,
        )
      : new KeymeshError(
          'ERR_UNAVAILABLE',
          `register ${key}: a majority of its replicas (${nodes.length}) could not be reached`,
        );
  }

  /** {@link read} with the round trips it took. */
  async readOutcome(key: string, quorum: Quorum): Promise<RegisterOutcome> {
    const erasable = isErasableKey(key);
    const states = await this.#gather(
      quorum,
      { t: 'read', key },
      { ok: (r) => r.t === 'state', decides: (r) => decides(committedOf(r), (v) => !erasable || isTombstone(v)) },
    );
    if (erasable) {
      const seen = tombstoneIn(states);
      if (seen === 'accepted') return this.propose(key, quorum, tombstone(), 1, true);
      // a replica that answered with something else than the tombstone's marker is sent it again
      if (seen === 'committed') {
        const stale = states.failed > 0 || states.positive.some((r) => !isTombstone(committedOf(r)));
        return {
          value: stale ? this.#finish(key, quorumNodes(quorum), tombstone(), quorum.epoch) : tombstone(),
          roundTrips: 1,
        };
      }
    }
    const chosen = committedIn(states);
    if (chosen && (states.quorate || !erasable)) return { value: chosen, roundTrips: 1 };
    if (!states.quorate)
      throw new KeymeshError(
        'ERR_UNAVAILABLE',
        `register ${key}: a majority of its replicas (${quorumNodes(quorum).length}) could not be reached`,
      );
    const seen = highestAccepted(states.positive);
    return seen === undefined ? { value: undefined, roundTrips: 1 } : this.propose(key, quorum, seen.value, 1);
  }

  #fastRoundAllowed(quorum: Quorum): boolean {
    return (
      this.#settings.fastRound &&
      quorum.fastRound !== false &&
      quorum.groups.length === 1 &&
      this.#timers.now() >= this.#fastPausedUntil &&
      (this.#fastRoundTo?.(quorumNodes(quorum)) ?? true)
    );
  }

  /** The fast round (`fast-round.ts`); a failure pauses fast rounds for `FAST_PAUSE_MS`. */
  async #fastRound(key: string, quorum: Quorum, candidate: Uint8Array): Promise<FastOutcome> {
    const result = await this.#gather(
      everyReplica(quorum),
      { t: 'fast', key, ballot: [0, this.#nodeId], value: candidate },
      { ok: (r) => r.t === 'accepted', decides: (r) => committedOf(r) !== undefined },
    );
    if (result.failed > 0) this.#fastPausedUntil = this.#timers.now() + FAST_PAUSE_MS;
    for (const r of result.negative)
      if (r.t === 'nack') this.#remember(key, Math.max(this.#rounds.get(key) ?? 0, r.promised[0]));
    return fastOutcome(result, quorum, candidate);
  }

  #finish(key: string, nodes: readonly string[], value: Uint8Array, epoch: number | undefined): Uint8Array {
    for (const to of nodes) {
      this.#transport
        .request(to, { t: 'commit', key, value }, this.#settings.requestTimeoutMs, epoch)
        .catch(() => this.#onUndelivered?.(key, to, value));
    }
    return value;
  }

  /**
   * The next round for `key`: one above the highest seen or used for it. Forgetting a key's round (a restart, or
   * the key falling out of the remembered ones) is safe: an acceptor promises a ballot only above the one it holds,
   * so no ballot wins a majority of promises twice, and the nacks of the first attempt bring the round back up.
   * @throws KeymeshError `ERR_UNAVAILABLE` when the key's round reached `MAX_BALLOT_ROUND`.
   */
  #nextRound(key: string): number {
    const round = (this.#rounds.get(key) ?? 0) + 1;
    if (round > MAX_BALLOT_ROUND)
      throw new KeymeshError('ERR_UNAVAILABLE', `register ${key}: its ballot rounds are exhausted`);
    this.#remember(key, round);
    return round;
  }

  #remember(key: string, round: number): void {
    this.#rounds.delete(key);
    this.#rounds.set(key, round);
    if (this.#rounds.size > ROUNDS_REMEMBERED) this.#rounds.delete(this.#rounds.keys().next().value!);
  }

  async #backOff(key: string, result: Gathered, attempt: number): Promise<void> {
    for (const r of result.negative)
      if (r.t === 'nack') this.#remember(key, Math.max(this.#rounds.get(key) ?? 0, r.promised[0]));
    const { backoffMinMs: min, backoffMaxMs: max } = this.#settings;
    const ceiling = Math.min(max * 8, max * 2 ** Math.min(attempt, 3));
    await this.#timers.sleep(min + this.#random() * (ceiling - min));
  }

  /** One phase over the quorum (`gather.ts`). */
  #gather(quorum: Quorum, request: RegisterRequest, rules: GatherRules): Promise<Gathered> {
    return gather(this.#transport, this.#settings.requestTimeoutMs, quorum, request, rules);
  }
}

function toQuorum(replicas: readonly string[] | Quorum): Quorum {
  return 'groups' in replicas ? replicas : majorities(replicas);
}

/** Whether a reply's commit marker decides the operation at once. */
function decides(committed: Uint8Array | undefined, counts: (value: Uint8Array) => boolean): boolean {
  return committed !== undefined && counts(committed);
}
