/**
 * Overstays: the last instant each key was chosen as active past its planned `retireAt` (because the activation
 * gate held its successor back). A key's effective expiry is its planned expiry moved by as long as it overstayed,
 * so nothing it signed or encrypted can outlive it. Kept in memory and, at most once a second per key, under
 * `overstay/<kid>` in the sealed store (a crash loses at most a second, which the clock-skew margin covers).
 */
import type { Logger } from '../log.js';
import type { SealedStore } from '../storage/sealed-store.js';
import type { KeyInfo } from './key-entry.js';

const PREFIX = 'overstay/';
const PERSIST_INTERVAL_MS = 1_000;

export class Overstays {
  readonly #store: SealedStore;
  readonly #log: Logger;
  readonly #last = new Map<string, number>();
  readonly #persisted = new Map<string, number>();

  constructor(store: SealedStore, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  async load(): Promise<void> {
    for await (const entry of this.#store.scan(PREFIX)) {
      if ('value' in entry && entry.value.length === 8)
        this.#last.set(entry.key.slice(PREFIX.length), Number(entry.value.readBigUInt64BE()));
    }
  }

  /** Notes that `key` was chosen at `at` past its planned retirement. */
  record(key: KeyInfo, at: number): void {
    if ((this.#last.get(key.kid) ?? 0) >= at) return;
    if (!this.#last.has(key.kid))
      this.#log.warn(
        { kid: key.kid, realm: key.realm, use: key.use },
        'key kept in use past its planned retirement; its expiry moves with it',
      );
    this.#last.set(key.kid, at);
    if (at - (this.#persisted.get(key.kid) ?? 0) < PERSIST_INTERVAL_MS) return;
    this.#persisted.set(key.kid, at);
    const value = Buffer.alloc(8);
    value.writeBigUInt64BE(BigInt(at));
    this.#store
      .put(`${PREFIX}${key.kid}`, value, { sync: true })
      .catch((err: unknown) => this.#log.error({ err, kid: key.kid }, 'could not persist an overstay time'));
  }

  /** When `key` stops being published. */
  effectiveExpireAt(key: KeyInfo): number {
    const last = this.#last.get(key.kid);
    return last === undefined ? key.expireAt : Math.max(key.expireAt, last + (key.expireAt - key.retireAt));
  }

  /** The store key to delete with an expired key's record. */
  storeKey(kid: string): string {
    return `${PREFIX}${kid}`;
  }

  forget(kid: string): void {
    this.#last.delete(kid);
    this.#persisted.delete(kid);
  }
}
