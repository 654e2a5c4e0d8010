/**
 * The acceptor side of the per-key register (single-decree Paxos per key, as in CASPaxos).
 *
 * Per key an acceptor keeps the highest ballot it promised, the proposal it accepted last, and the commit marker
 * once a proposer told it the value was chosen. Rules:
 * - `prepare(b)`: promise when `b` is above every ballot promised so far, answering with the accepted proposal (if
 *   any); otherwise refuse, naming the promise.
 * - `accept(b, v)`: accept when `b` is at least the promise; otherwise refuse.
 * - `commit(v)`: remember that `v` was chosen; from then on prepares are answered with the value itself.
 * The promise and the accepted proposal are written to stable storage (synced) before the reply leaves, so an
 * acceptor that crashes and restarts never answers against what it promised. The commit marker is written without
 * a sync: a marker lost in a crash only means the next read runs a round. Calls for one key are serialised.
 */
import type { Ballot } from './ballot.js';
import { compareBallots, ZERO_BALLOT } from './ballot.js';
import type { Accepted, RegisterReply, RegisterRequest } from './messages.js';

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

  constructor(store: AcceptorStateStore) {
    this.#store = store;
  }

  /** Handles one request; requests for one key run one at a time. */
  handle(request: RegisterRequest): Promise<RegisterReply> {
    const previous = this.#locks.get(request.key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(() => this.#handle(request));
    this.#locks.set(request.key, run);
    void run.finally(() => {
      if (this.#locks.get(request.key) === run) this.#locks.delete(request.key);
    }).catch(() => undefined);
    return run;
  }

  async #handle(request: RegisterRequest): Promise<RegisterReply> {
    const state: AcceptorState = (await this.#store.load(request.key)) ?? { promised: ZERO_BALLOT };
    switch (request.t) {
      case 'read':
        return { t: 'state', ...(state.accepted ? { accepted: state.accepted } : {}), ...(state.committed ? { committed: state.committed } : {}) };
      case 'prepare': {
        if (state.committed) return { t: 'promise', committed: state.committed };
        if (compareBallots(request.ballot, state.promised) <= 0) return { t: 'nack', promised: state.promised };
        await this.#store.save(request.key, { ...state, promised: request.ballot });
        return { t: 'promise', ...(state.accepted ? { accepted: state.accepted } : {}) };
      }
      case 'accept': {
        if (state.committed) return { t: 'nack', promised: state.promised, committed: state.committed };
        if (compareBallots(request.ballot, state.promised) < 0) return { t: 'nack', promised: state.promised };
        await this.#store.save(request.key, { promised: request.ballot, accepted: { ballot: request.ballot, value: request.value } });
        return { t: 'accepted' };
      }
      case 'commit': {
        if (!state.committed) await this.#store.save(request.key, { ...state, committed: request.value }, { synced: false });
        return { t: 'ack' };
      }
    }
  }
}
