import { readSealHeader, type Sealer } from '../crypto/sealer.js';
import { isKeymeshError, type KeymeshError } from '../errors.js';
import type { Store, WriteOptions } from './store.js';

/** One entry of a sealed scan: its plaintext, or the seal error that keeps it from being served. */
export type SealedEntry =
  | { readonly key: string; readonly value: Buffer }
  | { readonly key: string; readonly error: KeymeshError };

/**
 * A {@link Store} seen through a {@link Sealer}: every value is sealed with its record key as associated data
 * before it is written, and opened (authenticated) when read. A value that fails its seal check is never
 * returned as data: `get` throws `ERR_RECORD_CORRUPT`, `scan` reports it as an error entry.
 *
 * Writes to one key reach the store in the order they were made (each waits for the one before it on any of its
 * keys), so a background re-seal ({@link reseal}) can never put back an older value over a newer one.
 */
export class SealedStore {
  readonly #store: Store;
  readonly #sealer: Sealer;

  /** The last write issued per key, while it is on its way. */
  readonly #tails = new Map<string, Promise<unknown>>();

  constructor(store: Store, sealer: Sealer) {
    this.#store = store;
    this.#sealer = sealer;
  }

  /** Runs `write` once every earlier write to any of `keys` finished. */
  #inOrder<T>(keys: readonly string[], write: () => Promise<T>): Promise<T> {
    const before = keys.flatMap((k) => this.#tails.get(k) ?? []);
    const run = (before.length === 0 ? Promise.resolve() : Promise.allSettled(before)).then(write);
    for (const k of keys) this.#tails.set(k, run);
    void run
      .finally(() => {
        for (const k of keys) if (this.#tails.get(k) === run) this.#tails.delete(k);
      })
      .catch(() => undefined);
    return run;
  }

  /** @throws KeymeshError `ERR_RECORD_CORRUPT` when the stored value fails its seal check. */
  async get(key: string): Promise<Buffer | undefined> {
    const sealed = await this.#store.get(key);
    return sealed === undefined ? undefined : this.#sealer.open(key, sealed);
  }

  put(key: string, plaintext: Uint8Array, options?: WriteOptions): Promise<void> {
    const sealed = this.#sealer.seal(key, plaintext);
    return this.#inOrder([key], () => this.#store.put(key, sealed, options));
  }

  del(key: string, options?: WriteOptions): Promise<void> {
    return this.#inOrder([key], () => this.#store.del(key, options));
  }

  /** Seals every `put` of the batch and writes it atomically. */
  batch(
    operations: ReadonlyArray<{ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }>,
    options?: WriteOptions,
  ): Promise<void> {
    const sealed = operations.map((op) =>
      op.type === 'put' ? { type: 'put' as const, key: op.key, value: this.#sealer.seal(op.key, op.value) } : op,
    );
    return this.#inOrder(
      operations.map((op) => op.key),
      () => this.#store.batch(sealed, options),
    );
  }

  /**
   * Seals the value of `key` again under the sealing epoch when it is under another; true when it did. Ordered
   * with every other write to the key, so it never replaces a newer value.
   * @throws KeymeshError `ERR_RECORD_CORRUPT` when the value does not open.
   */
  reseal(key: string): Promise<boolean> {
    return this.#inOrder([key], async () => {
      const sealed = await this.#store.get(key);
      if (sealed === undefined || readSealHeader(sealed, key).epoch === this.#sealer.sealingEpoch) return false;
      await this.#store.put(key, this.#sealer.seal(key, this.#sealer.open(key, sealed)));
      return true;
    });
  }

  /** Every key under `prefix` with the epoch its value is sealed under (undefined when it is not a sealed value); nothing is opened. */
  async *epochs(prefix: string): AsyncIterable<[key: string, epoch: number | undefined]> {
    for await (const [key, sealed] of this.#store.entries(prefix)) {
      let epoch: number | undefined;
      try {
        epoch = readSealHeader(sealed, key).epoch;
      } catch {
        epoch = undefined;
      }
      yield [key, epoch];
    }
  }

  /** See {@link Store.compact}. */
  compact(prefix: string): Promise<void> {
    return this.#store.compact(prefix);
  }

  /** Every key under `prefix` (nothing is opened). */
  keys(prefix: string): AsyncIterable<string> {
    return this.#store.keys(prefix);
  }

  /** Every entry under `prefix`, opened; corrupt entries come back as errors, not data. */
  async *scan(prefix: string): AsyncIterable<SealedEntry> {
    for await (const [key, sealed] of this.#store.entries(prefix)) {
      try {
        yield { key, value: this.#sealer.open(key, sealed) };
      } catch (err) {
        if (!isKeymeshError(err, 'ERR_RECORD_CORRUPT')) throw err;
        yield { key, error: err };
      }
    }
  }
}
