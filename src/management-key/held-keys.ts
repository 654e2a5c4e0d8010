/**
 * The management keys one node holds, and the one it seals with: what the rotation steps change on a member.
 * Every change is written to the data directory first (`saveManagementKeys`: each key wrapped under every other,
 * atomically), then applied to the sealer and the private network, so a crash between the two leaves a node that
 * starts with the new state. Steps are idempotent: a step the member already took answers with its report again.
 */
import { ManagementKey } from '../crypto/management-key.js';
import type { Sealer } from '../crypto/sealer.js';
import { KeymeshError } from '../errors.js';
import type { Logger } from '../log.js';
import { saveManagementKeys } from '../node/data-dir.js';
import type { ManagementKeyReport } from './messages.js';
import type { Resealer } from './reseal.js';

/** Most keys a node holds at once (a rotation needs two). */
export const MAX_HELD_KEYS = 4;

export interface HeldKeysOptions {
  readonly dataDir: string;
  readonly keys: readonly ManagementKey[];
  readonly removed: ReadonlyArray<{ epoch: number; fingerprint: string }>;
  readonly sealer: Sealer;
  /** The private network: offers a key installed here, and retires a removed one (`Cluster.retireNetworkEpoch`). */
  readonly network: { add(key: ManagementKey): void; retire(epoch: number): void };
  readonly resealer: Resealer;
  readonly log: Logger;
}

export class HeldManagementKeys {
  readonly #o: HeldKeysOptions;
  readonly #keys = new Map<number, ManagementKey>();
  readonly #removed: Array<{ epoch: number; fingerprint: string }>;
  /** Steps run one at a time. */
  #step: Promise<unknown> = Promise.resolve();

  constructor(options: HeldKeysOptions) {
    this.#o = options;
    for (const key of options.keys) this.#keys.set(key.epoch, key);
    this.#removed = [...options.removed];
    if (this.#keys.size === 1) options.resealer.settle();
  }

  /** The key of the sealing epoch, to wrap a key being installed under. */
  get sealingKey(): ManagementKey {
    return this.#keys.get(this.#o.sealer.sealingEpoch)!;
  }

  /** Every key held, oldest epoch first. */
  get keys(): ManagementKey[] {
    return [...this.#keys.values()].sort((a, b) => a.epoch - b.epoch);
  }

  /** The key of `epoch`, when this node holds it. */
  key(epoch: number): ManagementKey | undefined {
    return this.#keys.get(epoch);
  }

  /** The epochs a rotation removed here. */
  get removedEpochs(): number[] {
    return this.#removed.map((r) => r.epoch);
  }

  /** Every epoch this node ever knew of: held or removed. */
  get knownEpochs(): number[] {
    return [...this.#keys.keys(), ...this.#removed.map((r) => r.epoch)];
  }

  /** After a start with several keys: seal again whatever is left under an older one. */
  resume(): void {
    if (this.#keys.size > 1) void this.#o.resealer.start();
  }

  report(): ManagementKeyReport {
    const progress = this.#o.resealer.progress;
    return {
      held: [...this.#keys.values()]
        .sort((a, b) => a.epoch - b.epoch)
        .map((k) => ({ epoch: k.epoch, fingerprint: k.fingerprint() })),
      sealing: this.#o.sealer.sealingEpoch,
      removed: this.#removed.map((r) => r.epoch),
      reseal: {
        state: progress.state,
        ...(progress.remaining !== undefined ? { remaining: progress.remaining } : {}),
        resealed: progress.resealed,
        passes: progress.passes,
      },
    };
  }

  /**
   * Holds `key` from now on (its epoch must be new to this node, or held with the same fingerprint).
   * @throws KeymeshError `ERR_ROTATION_STEP` when the epoch is held with another key, was removed, or too many are held.
   */
  install(key: ManagementKey): Promise<ManagementKeyReport> {
    return this.#serial(() => {
      const held = this.#keys.get(key.epoch);
      if (held) {
        if (held.fingerprint() !== key.fingerprint()) throw step(`this node holds another key for epoch ${key.epoch}`);
        return;
      }
      if (this.#removed.some((r) => r.epoch === key.epoch))
        throw step(`epoch ${key.epoch} was removed here; a rotation installs a new epoch`);
      if (this.#keys.size >= MAX_HELD_KEYS)
        throw step(`this node holds ${this.#keys.size} keys already; finish a rotation (remove the old key) first`);
      this.#persist([...this.#keys.values(), key], this.#o.sealer.sealingEpoch);
      this.#keys.set(key.epoch, key);
      this.#o.sealer.add(key);
      this.#o.network.add(key);
      this.#o.log.info({ epoch: key.epoch, fingerprint: key.fingerprint().slice(0, 12) }, 'management key installed');
      // an older key reaching a node that seals with a newer one (it joined during a rotation): what it holds
      // under the older key, handed over from its peers, is sealed again now that it can be opened
      if (key.epoch < this.#o.sealer.sealingEpoch) void this.#o.resealer.start();
    });
  }

  /**
   * Seals under `epoch` from now on, and starts sealing everything at rest again.
   * @throws KeymeshError `ERR_ROTATION_STEP` when this node does not hold that key.
   */
  use(epoch: number): Promise<ManagementKeyReport> {
    return this.#serial(() => {
      if (!this.#keys.has(epoch)) throw step(`this node does not hold the key of epoch ${epoch}; install it first`);
      // never back: a key once replaced may be the leaked one
      if (epoch < this.#o.sealer.sealingEpoch)
        throw step(
          `this node seals with epoch ${this.#o.sealer.sealingEpoch} already; a rotation never goes back to an older key`,
        );
      if (this.#o.sealer.sealingEpoch !== epoch) {
        this.#persist([...this.#keys.values()], epoch);
        this.#o.sealer.use(epoch);
        this.#o.log.info({ epoch }, 'sealing with a new management key; sealing everything at rest again');
      }
      void this.#o.resealer.start();
    });
  }

  /** Runs one fresh re-seal pass and reports what it sealed again (`verified`). */
  async verify(): Promise<ManagementKeyReport> {
    const pass = await this.#o.resealer.verify();
    return { ...this.report(), verified: pass };
  }

  /**
   * Forgets the key of `epoch` once a full re-seal pass finds nothing under it, closing the connections made under
   * it; a node started with that key is refused from then on.
   * @throws KeymeshError `ERR_ROTATION_STEP` when it is the sealing key or values are still under it.
   */
  remove(epoch: number): Promise<ManagementKeyReport> {
    return this.#serial(async () => {
      const key = this.#keys.get(epoch);
      if (!key) {
        if (this.#removed.some((r) => r.epoch === epoch)) return;
        throw step(`this node holds no key of epoch ${epoch}`);
      }
      if (epoch >= this.#o.sealer.sealingEpoch)
        throw step(
          `epoch ${epoch} is ${epoch === this.#o.sealer.sealingEpoch ? 'the one this node seals with' : 'newer than the one this node seals with'}; only an older key is removed, once the new one is used`,
        );
      const pass = await this.#o.resealer.verify();
      if (pass.remaining > 0)
        throw step(
          `${pass.remaining} records were still sealed under another epoch here (sealed again now); run the removal again`,
        );
      // synced and compacted before the key is forgotten: a power cut cannot bring back what was sealed under it
      await this.#o.resealer.settleOnDisk();
      const removed = [...this.#removed, { epoch, fingerprint: key.fingerprint() }];
      this.#persist(
        [...this.#keys.values()].filter((k) => k.epoch !== epoch),
        this.#o.sealer.sealingEpoch,
        removed,
      );
      this.#removed.push({ epoch, fingerprint: key.fingerprint() });
      this.#keys.delete(epoch);
      this.#o.sealer.remove(epoch);
      this.#o.network.retire(epoch);
      this.#o.log.info({ epoch }, 'management key removed');
    });
  }

  #persist(keys: ManagementKey[], sealingEpoch: number, removed = this.#removed): void {
    saveManagementKeys(this.#o.dataDir, { keys, sealingEpoch, removed });
  }

  #serial(run: () => void | Promise<void>): Promise<ManagementKeyReport> {
    const next = this.#step
      .catch(() => undefined)
      .then(run)
      .then(() => this.report());
    this.#step = next;
    return next;
  }
}

function step(message: string): KeymeshError {
  return new KeymeshError('ERR_ROTATION_STEP', message);
}

/** Opens a key sent by `install`: wrapped under the sender's key of epoch `under`, checked against `fingerprint`. */
export function openInstalled(
  holder: ManagementKey | undefined,
  request: { epoch: number; under: number; wrapped: string; fingerprint: string },
): ManagementKey {
  if (!holder) throw step(`this node does not hold the key of epoch ${request.under} the new key was sent under`);
  const key = ManagementKey.unwrap(holder, request.epoch, request.wrapped);
  if (key.fingerprint() !== request.fingerprint) throw step('the key sent does not match its fingerprint');
  return key;
}
