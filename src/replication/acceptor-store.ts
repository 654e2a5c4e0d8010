/**
 * Acceptor state on disk: one sealed record per register key under `reg/<key>`, msgpack with a version field,
 * written with a synced write before the acceptor replies (the promise and the accepted value both).
 *
 * Writes are group-committed: saves that arrive while a synced batch is being written wait and go to disk
 * together in the next batch, one sync for all of them. Every save still resolves only once its state is synced.
 *
 * Recently used states are kept in memory (write-through, least recently used dropped first): the acceptor is the
 * only writer of its records, and a create touches a key three times (prepare, accept, commit) in a moment. The
 * set of keys with a record is kept in memory too (loaded once by {@link index}), so a key never seen is answered
 * without a disk read; it costs one string per register key.
 */
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { KeymeshError } from '../errors.js';
import type { SealedStore } from '../storage/sealed-store.js';
import type { AcceptorState, AcceptorStateStore } from './acceptor.js';

const PREFIX = 'reg/';
/** This acceptor's write generation (see {@link SealedAcceptorStore.generation}). */
const GENERATION_RECORD = 'node/generation';
/** Acceptor states kept in memory. */
const CACHE_ENTRIES = 20_000;
const MAX_VALUE_BYTES = 64 * 1024;

const bytes = z.custom<Uint8Array>((b) => b instanceof Uint8Array && b.byteLength <= MAX_VALUE_BYTES);
const ballot = z.tuple([z.number().int().min(0), z.string().max(64)]);
const stateSchema = z.strictObject({
  v: z.literal(1),
  promised: ballot,
  accepted: z.strictObject({ ballot, value: bytes }).optional(),
  committed: bytes.optional(),
});

/** Acceptor state in the node's sealed LevelDB store. */
export class SealedAcceptorStore implements AcceptorStateStore {
  readonly #store: SealedStore;
  #queue: Array<{ key: string; value: Uint8Array; done: () => void; failed: (err: unknown) => void }> = [];
  #flushing = false;
  readonly #cache = new Map<string, AcceptorState | null>();
  #known: Set<string> | undefined;
  #generation = 0;
  #durableGeneration = 0;

  constructor(store: SealedStore) {
    this.#store = store;
  }

  /** @throws KeymeshError `ERR_RECORD_CORRUPT` when the stored state fails its seal or format check. */
  /**
   * How many synced batches of promises and accepted values this store has written, ever (persisted in the same
   * batches). It only grows; peers remember the highest they heard, so a data directory restored from a backup
   * shows up as a node whose generation went back.
   */
  get generation(): number {
    return this.#durableGeneration;
  }

  /** Loads the generation and the set of keys with a record; until then every cache miss reads the store. */
  async index(): Promise<void> {
    const stored = await this.#store.get(GENERATION_RECORD);
    this.#generation = this.#durableGeneration = stored && stored.length === 8 ? Number(Buffer.from(stored).readBigUInt64BE()) : 0;
    const known = new Set<string>();
    for await (const k of this.#store.keys(PREFIX)) known.add(k.slice(PREFIX.length));
    this.#known = known;
  }

  /** The keys with a record (after {@link index}), map registers included. */
  keys(): string[] {
    return [...(this.#known ?? [])];
  }

  async load(key: string): Promise<AcceptorState | undefined> {
    if (this.#known && !this.#known.has(key)) return undefined;
    const cached = this.#cache.get(key);
    if (cached !== undefined) {
      this.#remember(key, cached);
      return cached ?? undefined;
    }
    const state = await this.#read(key);
    // a save that finished while this read was on its way is newer: keep the cache's entry
    if (!this.#cache.has(key)) this.#remember(key, state ?? null);
    return state;
  }

  #remember(key: string, state: AcceptorState | null): void {
    this.#cache.delete(key);
    this.#cache.set(key, state);
    if (this.#cache.size > CACHE_ENTRIES) this.#cache.delete(this.#cache.keys().next().value!);
  }

  async #read(key: string): Promise<AcceptorState | undefined> {
    const raw = await this.#store.get(`${PREFIX}${key}`);
    if (raw === undefined) return undefined;
    const parsed = stateSchema.safeParse(unpack(raw));
    if (!parsed.success) throw new KeymeshError('ERR_RECORD_CORRUPT', `register state ${key} is malformed`);
    const { promised, accepted, committed } = parsed.data;
    return { promised, ...(accepted ? { accepted } : {}), ...(committed ? { committed } : {}) };
  }

  save(key: string, state: AcceptorState, options: { synced?: boolean } = {}): Promise<void> {
    if (options.synced === false) {
      this.#known?.add(key);
      return this.#store.put(`${PREFIX}${key}`, pack({ v: 1, ...state })).then(
        () => this.#remember(key, state),
        (err: unknown) => {
          this.#cache.delete(key);
          throw err;
        },
      );
    }
    return new Promise((done, failed) => {
      const settled = () => {
        this.#remember(key, state);
        done();
      };
      const lost = (err: unknown) => {
        this.#cache.delete(key);
        failed(err);
      };
      this.#known?.add(key);
      this.#queue.push({ key: `${PREFIX}${key}`, value: pack({ v: 1, ...state }), done: settled, failed: lost });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      const generation = this.#generation + 1;
      const encoded = Buffer.alloc(8);
      encoded.writeBigUInt64BE(BigInt(generation));
      try {
        await this.#store.batch([...batch.map((w) => ({ type: 'put' as const, key: w.key, value: w.value })), { type: 'put' as const, key: GENERATION_RECORD, value: encoded }], { sync: true });
        this.#generation = this.#durableGeneration = generation;
        for (const w of batch) w.done();
      } catch (err) {
        for (const w of batch) w.failed(err);
      }
    }
    this.#flushing = false;
  }
}
