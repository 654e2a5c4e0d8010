/**
 * The storage seam: an ordered key-value store with string keys and byte values.
 *
 * Contract (checked by `test/helpers/store-compliance.ts` against every implementation):
 * - keys are non-empty strings, iterated in ascending order of their UTF-8 bytes;
 * - `get` of a missing key resolves to `undefined`; values come back as fresh copies;
 * - a `batch` is atomic: all of its operations land or none does;
 * - with `{ sync: true }` a write is on stable storage before the promise resolves (a crash right after
 *   cannot lose it); without it, a process crash is survived but a machine crash may lose the last writes;
 * - every call before `start()` or after `stop()` rejects with `ERR_STORE_CLOSED`.
 *
 * Concurrency: calls may overlap; each single call is atomic, and an iteration sees a consistent snapshot.
 */
import type { Startable } from '../startable.js';

/** Options of a write. */
export interface WriteOptions {
  /** Flush to stable storage before resolving. Default is false. */
  readonly sync?: boolean;
}

/** One operation of a batch. */
export type StoreOperation =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: string };

/** An ordered key-value store. */
export interface Store extends Startable {
  get(key: string): Promise<Uint8Array | undefined>;
  put(key: string, value: Uint8Array, options?: WriteOptions): Promise<void>;
  del(key: string, options?: WriteOptions): Promise<void>;
  batch(operations: readonly StoreOperation[], options?: WriteOptions): Promise<void>;
  /** Every entry whose key starts with `prefix`, in key order. */
  entries(prefix: string): AsyncIterable<[key: string, value: Uint8Array]>;
  /** Every key that starts with `prefix`, in key order (values are not read). */
  keys(prefix: string): AsyncIterable<string>;
  /**
   * Gives back the space of deleted entries under `prefix` now, instead of whenever the store gets to it (after
   * many deletions). Never changes what the store holds.
   */
  compact(prefix: string): Promise<void>;
}
