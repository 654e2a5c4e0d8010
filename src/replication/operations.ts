/**
 * Operations on register keys (DESIGN §8): `getOrCreate`, `read` and `erase` run here when this node is one of the
 * key's replicas and are forwarded to a replica otherwise (`forwarder.ts`). A replica holding the commit marker
 * answers from disk without a round, except for a committed value of an erasable key (`tombstone.ts`), which a
 * quorum confirms first (a tombstone chosen elsewhere wins). An operation that met a map change is run again in the
 * new epoch: each is safe to repeat, even after an unconfirmed accept. Map registers are not open to operations.
 *
 * No sloppy quorum: an operation counts only the key's replicas in the map (`Placement`), never stand-ins. One that
 * cannot reach a majority of them fails with `ERR_UNAVAILABLE` (503, nothing was proposed) or `ERR_OUTCOME_UNKNOWN`
 * (503, an accept went out unconfirmed; a retry returns whatever was chosen), and never falls back to other nodes.
 */
import type { MapKeeper } from '../cluster-map/map-keeper.js';
import { KeymeshError, isKeymeshError } from '../errors.js';
import type { RegisterMetrics } from '../metrics/recorder.js';
import type { SealedAcceptorStore } from '../register/acceptor-store.js';
import { isExpiringKey, withExpiry, withoutExpiry } from '../register/expiring.js';
import { inEpoch, majorities, type Proposer, type RegisterOutcome } from '../register/proposer.js';
import { replicaSetsOf } from '../register/register-faults.js';
import { isErasableKey, isErasedValue } from '../register/tombstone.js';
import type { AgreementOptions } from './agreement-types.js';
import { measured } from './measured.js';
import type { Forwarder } from './forwarder.js';

/** The cluster map's own registers. */
export const MAP_PREFIX = 'map/';

export type RegisterOp = 'get-or-create' | 'read' | 'erase';

/** Times an operation is run again after the map changed under it. */
const EPOCH_RETRIES = 3;

export interface OperationsContext {
  readonly keeper: MapKeeper;
  readonly acceptorStore: SealedAcceptorStore;
  readonly forwarder: Forwarder;
  /** The proposer, once the node joined the network. */
  readonly proposer: () => Proposer | undefined;
  readonly nodeId: string;
  readonly bootstrapExpect: number;
  readonly faults?: AgreementOptions['faults'];
  readonly metrics?: RegisterMetrics | undefined;
}

export class RegisterOperations {
  readonly #o: OperationsContext;

  constructor(context: OperationsContext) {
    this.#o = context;
  }

  /**
   * The value of register `key`: the one already chosen, or `candidate`. A key under an expiring namespace
   * (`expiring.ts`) needs `expiresAt` (seconds since the epoch): every replica forgets the record once it passed
   * (plus the clock skew); any other key must not have one.
   * @throws KeymeshError `ERR_UNAVAILABLE` or `ERR_OUTCOME_UNKNOWN`; `ERR_INTERNAL` for a missing or misplaced expiry.
   */
  async getOrCreate(
    key: string,
    candidate: Uint8Array,
    options: { expiresAt?: number } = {},
  ): Promise<RegisterOutcome> {
    checkKey(key);
    if (isExpiringKey(key) !== (options.expiresAt !== undefined)) {
      throw new KeymeshError(
        'ERR_INTERNAL',
        `register ${key.split('/')[0]}/…: ${isExpiringKey(key) ? 'an expiring record needs an expiry' : 'only expiring namespaces take an expiry'}`,
      );
    }
    const proposed = options.expiresAt === undefined ? candidate : withExpiry(options.expiresAt, candidate);
    // reported once, at the node that was asked (not again where a forwarded operation is served)
    return payloadOf(
      await measured(this.#o.metrics, 'get-or-create', () => this.run('get-or-create', key, proposed, false)),
    );
  }

  /** The chosen value of register `key` (without its expiry header), or undefined. */
  async read(key: string): Promise<RegisterOutcome> {
    checkKey(key);
    return payloadOf(await measured(this.#o.metrics, 'read', () => this.run('read', key, undefined, false)));
  }

  /**
   * Replaces the value of erasable register `key` by the tombstone, for ever (`tombstone.ts`); also when it holds
   * none yet, so that none is ever created. Resolves with the tombstone.
   * @throws KeymeshError `ERR_INVALID_REQUEST` for a key that cannot be erased; `ERR_UNAVAILABLE`, `ERR_OUTCOME_UNKNOWN`.
   */
  async erase(key: string): Promise<RegisterOutcome> {
    checkKey(key);
    if (!isErasableKey(key))
      throw new KeymeshError('ERR_INVALID_REQUEST', `register ${key.split('/')[0]}/…: its values cannot be erased`);
    return measured(this.#o.metrics, 'erase', () => this.run('erase', key, undefined, false));
  }

  /** Runs `op` on `key`; `forwarded` when another node asked this one as a replica (it is then never forwarded on). */
  async run(
    op: RegisterOp,
    key: string,
    candidate: Uint8Array | undefined,
    forwarded: boolean,
  ): Promise<RegisterOutcome> {
    for (let attempt = 0; ; attempt++) {
      const epoch = this.#o.keeper.epoch;
      try {
        return await this.#runOnce(op, key, candidate, forwarded);
      } catch (err) {
        // a map change while the operation ran: the replicas refused the old epoch; run again in the new one
        const retriable = isKeymeshError(err, 'ERR_UNAVAILABLE') || isKeymeshError(err, 'ERR_OUTCOME_UNKNOWN');
        if (attempt < EPOCH_RETRIES && retriable && this.#o.keeper.epoch !== epoch) continue;
        throw err;
      }
    }
  }

  async #runOnce(
    op: RegisterOp,
    key: string,
    candidate: Uint8Array | undefined,
    forwarded: boolean,
  ): Promise<RegisterOutcome> {
    const placement = this.#o.keeper.placement;
    const proposer = this.#o.proposer();
    if (!placement || !proposer)
      throw new KeymeshError(
        'ERR_UNAVAILABLE',
        `no cluster map yet: the register serves once ${this.#o.bootstrapExpect} nodes have met (bootstrapExpect)`,
      );
    const sets = replicaSetsOf(placement, key, this.#o.faults, this.#o.nodeId);
    const nodes = [...new Set(sets.flat())];
    if (nodes.includes(this.#o.nodeId)) {
      const committed = (await this.#o.acceptorStore.load(key))?.committed;
      // a commit marker is served from disk, unless a tombstone elsewhere may have replaced it (a quorum decides)
      if (committed && (!isErasableKey(key) || isErasedValue(key, committed)))
        return { value: committed, roundTrips: 0 };
      const quorum = inEpoch(majorities(...sets), placement.map.epoch);
      if (op === 'erase') return proposer.erase(key, quorum);
      return op === 'read' || committed ? proposer.readOutcome(key, quorum) : proposer.propose(key, quorum, candidate!);
    }
    if (forwarded)
      throw new KeymeshError(
        'ERR_UNAVAILABLE',
        `node ${this.#o.nodeId} is not a replica of ${key} in cluster map ${placement.map.epoch}`,
      );
    return this.#o.forwarder.forward(op, key, candidate, nodes);
  }
}

/** An outcome with its value's expiry header taken off. */
function payloadOf(outcome: RegisterOutcome): RegisterOutcome {
  return outcome.value ? { ...outcome, value: withoutExpiry(outcome.value) } : outcome;
}

function checkKey(key: string): void {
  if (key.length === 0 || key.length > 256 || key.startsWith(MAP_PREFIX))
    throw new KeymeshError(
      'ERR_INVALID_REQUEST',
      `register key must be 1–256 characters and not start with ${MAP_PREFIX}`,
    );
}
