import { Level } from 'level';
import { KeymeshError } from '../errors.js';
import type { Store, StoreOperation, WriteOptions } from './store.js';

/** The LevelDB implementation of {@link Store} (`level`, prebuilt native binding). */
export class LevelStore implements Store {
  readonly #location: string;
  #db: Level<string, Uint8Array> | undefined;

  /** @param location the database directory; created on first start. */
  constructor(location: string) {
    this.#location = location;
  }

  /** @throws KeymeshError `ERR_DATA_DIR` when the database cannot be opened (for example, another process holds it). */
  async start(): Promise<void> {
    if (this.#db) return;
    const db = new Level<string, Uint8Array>(this.#location, { keyEncoding: 'utf8', valueEncoding: 'view' });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      const why = cause?.code === 'LEVEL_LOCKED' ? 'it is locked by another process' : 'it could not be opened';
      throw new KeymeshError('ERR_DATA_DIR', `cannot open the database at ${this.#location}: ${why}`, { cause: err });
    }
    this.#db = db;
  }

  async stop(): Promise<void> {
    const db = this.#db;
    this.#db = undefined;
    await db?.close();
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    return (await this.#open(key).get(key)) ?? undefined;
  }

  async put(key: string, value: Uint8Array, options: WriteOptions = {}): Promise<void> {
    await this.#open(key).put(key, value, { sync: options.sync === true });
  }

  async del(key: string, options: WriteOptions = {}): Promise<void> {
    await this.#open(key).del(key, { sync: options.sync === true });
  }

  async batch(operations: readonly StoreOperation[], options: WriteOptions = {}): Promise<void> {
    const db = this.#open();
    for (const op of operations) this.#open(op.key);
    await db.batch(
      operations.map((op) =>
        op.type === 'put'
          ? { type: 'put' as const, key: op.key, value: op.value }
          : { type: 'del' as const, key: op.key },
      ),
      { sync: options.sync === true },
    );
  }

  async *entries(prefix: string): AsyncIterable<[string, Uint8Array]> {
    const db = this.#open();
    for await (const [key, value] of db.iterator({ gte: prefix })) {
      if (!key.startsWith(prefix)) break;
      yield [key, value];
    }
  }

  async *keys(prefix: string): AsyncIterable<string> {
    const db = this.#open();
    for await (const key of db.keys({ gte: prefix })) {
      if (!key.startsWith(prefix)) break;
      yield key;
    }
  }

  async compact(prefix: string): Promise<void> {
    // in Node, `level` is classic-level, which has compactRange (its type covers the browser build too); every key
    // under the prefix sorts between it and the prefix followed by the highest code point
    const db = this.#open() as unknown as { compactRange?: (start: string, end: string) => Promise<void> };
    await db.compactRange?.(prefix, `${prefix}\u{10ffff}`);
  }

  #open(key?: string): Level<string, Uint8Array> {
    if (!this.#db) throw new KeymeshError('ERR_STORE_CLOSED', 'the store is not open');
    if (key !== undefined && (typeof key !== 'string' || key.length === 0))
      throw new TypeError('store keys are non-empty strings');
    return this.#db;
  }
}
