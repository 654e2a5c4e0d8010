import type { Sealer } from '../crypto/sealer.js';
import { isKeymeshError, type KeymeshError } from '../errors.js';
import type { Store, WriteOptions } from './store.js';

/** One entry of a sealed scan: its plaintext, or the seal error that keeps it from being served. */
export type SealedEntry = { readonly key: string; readonly value: Buffer } | { readonly key: string; readonly error: KeymeshError };

/**
 * A {@link Store} seen through a {@link Sealer}: every value is sealed with its record key as associated data
 * before it is written, and opened (authenticated) when read. A value that fails its seal check is never
 * returned as data: `get` throws `ERR_RECORD_CORRUPT`, `scan` reports it as an error entry.
 */
export class SealedStore {
  readonly #store: Store;
  readonly #sealer: Sealer;

  constructor(store: Store, sealer: Sealer) {
    this.#store = store;
    this.#sealer = sealer;
  }

  /** @throws KeymeshError `ERR_RECORD_CORRUPT` when the stored value fails its seal check. */
  async get(key: string): Promise<Buffer | undefined> {
    const sealed = await this.#store.get(key);
    return sealed === undefined ? undefined : this.#sealer.open(key, sealed);
  }

  async put(key: string, plaintext: Uint8Array, options?: WriteOptions): Promise<void> {
    await this.#store.put(key, this.#sealer.seal(key, plaintext), options);
  }

  async del(key: string, options?: WriteOptions): Promise<void> {
    await this.#store.del(key, options);
  }

  /** Seals every `put` of the batch and writes it atomically. */
  async batch(operations: ReadonlyArray<{ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }>, options?: WriteOptions): Promise<void> {
    await this.#store.batch(operations.map((op) => (op.type === 'put' ? { type: 'put', key: op.key, value: this.#sealer.seal(op.key, op.value) } : op)), options);
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
