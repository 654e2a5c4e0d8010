/**
 * The acceptor side of the per-key register (single-decree Paxos per key, as in CASPaxos).
 *
 * Per key an acceptor keeps the highest ballot it promised, the proposal it accepted last, and the commit marker
 * once a proposer told it the value was chosen. Rules:
 * - `prepare(b)`: promise when `b` is above every ballot promised so far, answering with the accepted proposal (if
 *   any); otherwise refuse, naming the promise.
 * - `accept(b, v)`: accept when `b` is at least the promise; otherwise refuse.
 * - `commit(v)`: remember that `v` was chosen; from then on prepares are answered with the value itself.
 * - `fast(b, v)`, an accept of round 0 that no prepare preceded: accept only while nothing was promised, accepted
 *   or committed for the key, so an acceptor takes at most one value in the fast round (whoever proposed it);
 *   otherwise refuse. Never on an erasable key: erasures keep their own rounds.
 * The promise and the accepted proposal are written to stable storage (synced) before the reply leaves, so an
 * acceptor that crashes and restarts never answers against what it promised. The commit marker is written without
 * a sync: a marker lost in a crash only means the next read runs a round. Calls for one key are serialised.
 *
 * Erasable keys (`tombstone.ts`) add one transition, to the tombstone, and none out of it:
 * - a prepare with `erase` is promised by the usual rule even over a committed value (which it reports), and an
 *   accept of the tombstone is accepted by the usual rule over a committed value (kept until the tombstone's commit);
 * - `commit(tombstone)` replaces a committed value, and the accepted proposal goes with it (synced: the old
 *   secret's bytes leave this acceptor's state, and `onErased` hears of it); a committed tombstone answers every
 *   prepare and refuses every accept, and a commit of any other value never replaces it;
 * - every answer about a committed value also carries the accepted proposal, so a tombstone accepted over a
 *   committed value is seen by whoever asks (and the erasure is finished by them).
 */
import type { Ballot } from './ballot.js';
import { compareBallots, ZERO_BALLOT } from './ballot.js';
import type { Accepted, RegisterReply, RegisterRequest } from './messages.js';
import { isErasableKey, isTombstone } from './tombstone.js';

/** What one acceptor remembers about one key. */
export interface AcceptorState {
  readonly promised: Ballot;
  readonly accepted?: Accepted;
  readonly committed?: Uint8Array;
}

/**
 * Durable per-key acceptor state. `save` resolves only once the state is on stable storage, unless `synced` is
 * false (a commit marker: losing it costs a round later, never safety).
 */
export interface AcceptorStateStore {
  load(key: string): Promise<AcceptorState | undefined>;
  save(key: string, state: AcceptorState, options?: { synced?: boolean }): Promise<void>;
}

/** One node's acceptor for every key. */
export class Acceptor {
  readonly #store: AcceptorStateStore;
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #onErased: ((key: string) => void) | undefined;

  /** `onErased` hears of every key whose committed value this acceptor replaced by the tombstone (once stored). */
  constructor(store: AcceptorStateStore, options: { onErased?: (key: string) => void } = {}) {
    this.#store = store;
    this.#onErased = options.onErased;
  }

  /** Handles one request; requests for one key run one at a time. */
  handle(request: RegisterRequest): Promise<RegisterReply> {
    const previous = this.#locks.get(request.key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.#handle(request));
    this.#locks.set(request.key, run);
    void run
      .finally(() => {
        if (this.#locks.get(request.key) === run) this.#locks.delete(request.key);
      })
      .catch(() => undefined);
    return run;
  }

  async #handle(request: RegisterRequest): Promise<RegisterReply> {
    const state: AcceptorState = (await this.#store.load(request.key)) ?? { promised: ZERO_BALLOT };
    if (isErasableKey(request.key)) return this.#handleErasable(request, state);
    switch (request.t) {
      case 'read':
        return {
          t: 'state',
          ...(state.accepted ? { accepted: state.accepted } : {}),
          ...(state.committed ? { committed: state.committed } : {}),
        };
      case 'prepare': {
        if (state.committed) return { t: 'promise', committed: state.committed };
        return this.#promise(request.key, request.ballot, state);
      }
      case 'accept': {
        if (state.committed) return { t: 'nack', promised: state.promised, committed: state.committed };
        // a round-0 ballot comes only with a fast accept, which has its own rule
        if (request.ballot[0] === 0) return { t: 'nack', promised: state.promised };
        return this.#accept(request.key, request.ballot, request.value, state);
      }
      case 'fast': {
        if (state.committed) return { t: 'nack', promised: state.promised, committed: state.committed };
        if (state.accepted || compareBallots(state.promised, ZERO_BALLOT) !== 0 || request.ballot[0] !== 0)
          return { t: 'nack', promised: state.promised };
        return this.#accept(request.key, request.ballot, request.value, state);
      }
      case 'commit': {
        if (!state.committed)
          await this.#store.save(request.key, { ...state, committed: request.value }, { synced: false });
        return { t: 'ack' };
      }
    }
  }

  /** The rules of an erasable key (see the top of this file). */
  async #handleErasable(request: RegisterRequest, state: AcceptorState): Promise<RegisterReply> {
    const erased = isTombstone(state.committed);
    const accepted = state.accepted ? { accepted: state.accepted } : {};
    switch (request.t) {
      case 'read':
        return { t: 'state', ...accepted, ...(state.committed ? { committed: state.committed } : {}) };
      case 'prepare': {
        if (erased || (state.committed && !request.erase))
          return { t: 'promise', ...accepted, committed: state.committed! };
        return this.#promise(request.key, request.ballot, state);
      }
      case 'accept': {
        if (erased || (state.committed && !isTombstone(request.value)))
          return { t: 'nack', promised: state.promised, committed: state.committed! };
        if (request.ballot[0] === 0) return { t: 'nack', promised: state.promised };
        return this.#accept(request.key, request.ballot, request.value, state);
      }
      case 'fast':
        return { t: 'nack', promised: state.promised, ...(state.committed ? { committed: state.committed } : {}) };
      case 'commit': {
        if (erased) return { t: 'ack' };
        if (isTombstone(request.value)) {
          await this.#store.save(request.key, { promised: state.promised, committed: request.value });
          // a value this replica held (committed, or only accepted) is gone from its state: its bytes may go too
          if (state.committed || state.accepted) this.#onErased?.(request.key);
        } else if (!state.committed) {
          await this.#store.save(request.key, { ...state, committed: request.value }, { synced: false });
        }
        return { t: 'ack' };
      }
    }
  }

  async #promise(key: string, ballot: Ballot, state: AcceptorState): Promise<RegisterReply> {
    if (compareBallots(ballot, state.promised) <= 0)
      return { t: 'nack', promised: state.promised, ...(state.committed ? { committed: state.committed } : {}) };
    await this.#store.save(key, { ...state, promised: ballot });
    return {
      t: 'promise',
      ...(state.accepted ? { accepted: state.accepted } : {}),
      ...(state.committed ? { committed: state.committed } : {}),
    };
  }

  async #accept(key: string, ballot: Ballot, value: Uint8Array, state: AcceptorState): Promise<RegisterReply> {
    if (compareBallots(ballot, state.promised) < 0)
      return { t: 'nack', promised: state.promised, ...(state.committed ? { committed: state.committed } : {}) };
    await this.#store.save(key, {
      promised: ballot,
      accepted: { ballot, value },
      ...(state.committed ? { committed: state.committed } : {}),
    });
    return { t: 'accepted' };
  }
}
