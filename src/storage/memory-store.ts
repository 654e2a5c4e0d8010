import { KeymeshError } from '../errors.js';
import type { Store, StoreOperation, WriteOptions } from './store.js';

/**
 * The in-memory twin of {@link LevelStore}, for unit tests. Same contract; `sync` is accepted and means nothing.
 * Its contents survive `stop()` and a later `start()`, which lets tests model a restart.
 */
export class MemoryStore implements Store {
  readonly #data = new Map<string, Uint8Array>();
  #open = false;

  async start(): Promise<void> {
    this.#open = true;
  }

  async stop(): Promise<void> {
    this.#open = false;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    this.#check(key);
    const v = this.#data.get(key);
    return v === undefined ? undefined : Uint8Array.from(v);
  }

  async put(key: string, value: Uint8Array, _options?: WriteOptions): Promise<void> {
    this.#check(key);
    this.#data.set(key, Uint8Array.from(value));
  }

  async del(key: string, _options?: WriteOptions): Promise<void> {
    this.#check(key);
    this.#data.delete(key);
  }

  async batch(operations: readonly StoreOperation[], _options?: WriteOptions): Promise<void> {
    this.#check();
    for (const op of operations) this.#check(op.key);
    for (const op of operations) {
      if (op.type === 'put') this.#data.set(op.key, Uint8Array.from(op.value));
      else this.#data.delete(op.key);
    }
  }

  async *entries(prefix: string): AsyncIterable<[string, Uint8Array]> {
    this.#check();
    const snapshot = [...this.#data.entries()]
      .filter(([k]) => k.startsWith(prefix))
      .sort(([a], [b]) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')));
    for (const [k, v] of snapshot) yield [k, Uint8Array.from(v)];
  }

  async *keys(prefix: string): AsyncIterable<string> {
    for await (const [key] of this.entries(prefix)) yield key;
  }

  #check(key?: string): void {
    if (!this.#open) throw new KeymeshError('ERR_STORE_CLOSED', 'the store is not open');
    if (key !== undefined && (typeof key !== 'string' || key.length === 0))
      throw new TypeError('store keys are non-empty strings');
  }

  /** Nothing to give back: deleted entries are gone at once. */
  async compact(_prefix: string): Promise<void> {
    this.#check();
  }
}
