/**
 * Acceptor state on disk: one sealed record per register key under `reg/<key>`, msgpack with a version field,
 * written with a synced write before the acceptor replies (the promise and the accepted value both).
 *
 * Writes are group-committed: saves that arrive while a batch is being written wait and go to disk together in
 * the next batch, one sync for all of them. Every save still resolves only once its state is synced. Commit markers
 * need no sync (a lost marker costs a round later, never safety): they ride in the next batch, and those of one turn
 * of the event loop with nothing else to carry them go in one batch without a sync. Each synced batch also writes the acceptor's register generation (`node/generation`), one more than the last: it only
 * grows, heartbeats carry it, and a node seen again at a lower one runs on a data directory restored from a backup
 * (`src/replication/restored.ts`).
 *
 * Recently used states are kept in memory (write-through, least recently used dropped first): the acceptor is the
 * only writer of its records, and a create touches a key three times (prepare, accept, commit) in a moment. The
 * set of keys with a record is kept in memory too (loaded once by {@link index}), so a key never seen is answered
 * without a disk read; it costs one string per register key.
 *
 * Expiring records (`expiring.ts`) are also listed under `rexp/<expiry, 12 hex digits>/<key>`, written in the
 * same batch as the record, so {@link sweep} finds the expired ones with one ordered scan that stops at the first
 * entry still due later: its work, the in-memory key set and the start-up index follow live records, never
 * history. A record holding only a promise has no value to carry an expiry yet: it is listed at
 * `PROMISE_KEPT_S` after the promise, far beyond any operation's deadline, and collected then unless a value
 * arrived meanwhile.
 */
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { KeymeshError } from '../errors.js';
import type { Clock } from '../clock.js';
import type { SealedStore } from '../storage/sealed-store.js';
import type { AcceptorState, AcceptorStateStore } from './acceptor.js';
import { expiryOf, isExpiringKey } from './expiring.js';

/** Where acceptor records live in the store. */
export const PREFIX = 'reg/';
/** The expiry index of expiring records. */
const EXPIRY_PREFIX = 'rexp/';
/** How long a promise with no value is kept on an expiring key (seconds). Default is 600 (10 minutes). */
export const PROMISE_KEPT_S = 600;
/** Expired records removed per batch of a sweep. */
const SWEEP_BATCH = 1_000;
/** After a sweep removed at least this many records, the store is asked to compact their ranges. */
const COMPACT_AFTER = 10_000;
/** This acceptor's write generation (see {@link SealedAcceptorStore.generation}). */
export const GENERATION_RECORD = 'node/generation';
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
  /** A promise-only record of an expiring key: kept until then (seconds). */
  until: z.number().int().min(0).optional(),
});

/** A stored record: the acceptor's state and, for a promise-only record of an expiring key, how long it is kept. */
type StoredState = AcceptorState & { readonly until?: number };

/** Acceptor state in the node's sealed LevelDB store. */
/** Options of the store: the wall clock and how long past its expiry a record is kept (the tolerated clock skew). */
export interface AcceptorStoreOptions {
  readonly clock: Clock;
  /** Kept past a record's expiry before it is removed (ms): at least the cluster's tolerated clock skew. */
  readonly expiryGraceMs: number;
}

export class SealedAcceptorStore implements AcceptorStateStore {
  readonly #store: SealedStore;
  readonly #clock: Clock | undefined;
  readonly #graceMs: number;
  /**
   * Saves waiting for the next batch. A batch with a promise or an accepted value in it is synced (and counts a
   * generation); commit markers ride in whatever batch comes next, and a batch of markers alone is not synced.
   */
  #queue: QueuedWrite[] = [];
  /** Whether a flush of commit markers alone waits for the end of this turn of the event loop. */
  #flushScheduled = false;
  /** Keys a re-seal is reading, and whether a save came meanwhile. */
  readonly #resealing = new Map<string, boolean>();
  #flushing = false;
  readonly #cache = new Map<string, AcceptorState | null>();
  #known: Set<string> | undefined;
  #generation = 0;
  #durableGeneration = 0;
  /** While a sweep runs: the keys saved since it began. */
  #touched: Set<string> | undefined;
  /** Promise-only records of expiring keys this process listed, and the time each is listed at (seconds). */
  readonly #provisional = new Map<string, number>();
  /** Keys with a save on its way to disk, and how many. */
  readonly #unsettled = new Map<string, number>();

  /** Without `options`, nothing is ever swept (unit tests of the acceptor alone). */
  constructor(store: SealedStore, options?: AcceptorStoreOptions) {
    this.#store = store;
    this.#clock = options?.clock;
    this.#graceMs = options?.expiryGraceMs ?? 0;
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

  /**
   * Loads the generation and the set of keys with a record; until then every cache miss reads the store. Records
   * that expired while the node was down are listed too, until the first {@link sweep} (which the agreement role
   * runs in the background right after start, so they never delay it).
   */
  async index(): Promise<void> {
    const stored = await this.#store.get(GENERATION_RECORD);
    this.#generation = this.#durableGeneration =
      stored && stored.length === 8 ? Number(Buffer.from(stored).readBigUInt64BE()) : 0;
    const known = new Set<string>();
    for await (const k of this.#store.keys(PREFIX)) known.add(k.slice(PREFIX.length));
    this.#known = known;
  }

  /** Whether `key`'s chosen `value` has expired (past its expiry plus the grace): it is swept, never copied. */
  isExpired(key: string, value: Uint8Array): boolean {
    if (!this.#clock || !isExpiringKey(key)) return false;
    const expiry = expiryOf(value);
    return expiry !== undefined && expiry <= Math.floor((this.#clock.now() - this.#graceMs) / 1000);
  }

  /** How many keys have a record (after {@link index}). */
  get size(): number {
    return this.#known?.size ?? 0;
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
    const stored = await this.#readStored(key);
    if (!stored) return undefined;
    const { promised, accepted, committed } = stored;
    return { promised, ...(accepted ? { accepted } : {}), ...(committed ? { committed } : {}) };
  }

  async #readStored(key: string): Promise<StoredState | undefined> {
    const raw = await this.#store.get(`${PREFIX}${key}`);
    if (raw === undefined) return undefined;
    const parsed = stateSchema.safeParse(unpack(raw));
    if (!parsed.success) throw new KeymeshError('ERR_RECORD_CORRUPT', `register state ${key} is malformed`);
    return parsed.data;
  }

  /**
   * The record as written, and its expiry-index writes: a promise-only record of an expiring key is listed at (and
   * carries) the time it is kept until; once it has a value it is listed at the value's expiry, and the listing of
   * its promise, when this process wrote it, is dropped in the same batch.
   */
  #encode(key: string, state: AcceptorState): { value: Uint8Array; listed: IndexOp[] } {
    const { promised, accepted, committed } = state;
    const base = { v: 1, promised, ...(accepted ? { accepted } : {}), ...(committed ? { committed } : {}) };
    if (!isExpiringKey(key)) return { value: pack(base), listed: [] };
    const previous = this.#provisional.get(key);
    const unlisted: IndexOp[] = previous === undefined ? [] : [{ type: 'del', key: indexKey(previous, key) }];
    const value = committed ?? accepted?.value;
    if (value) {
      this.#provisional.delete(key);
      const expiry = expiryOf(value);
      return { value: pack(base), listed: [...unlisted, ...(expiry === undefined ? [] : [listing(expiry, key)])] };
    }
    const until = Math.floor((this.#clock?.now() ?? Date.now()) / 1000) + PROMISE_KEPT_S;
    this.#provisional.set(key, until);
    return { value: pack({ ...base, until }), listed: [...(previous === until ? [] : unlisted), listing(until, key)] };
  }

  save(key: string, state: AcceptorState, options: { synced?: boolean } = {}): Promise<void> {
    this.#touched?.add(key);
    if (this.#resealing.has(key)) this.#resealing.set(key, true);
    this.#unsettled.set(key, (this.#unsettled.get(key) ?? 0) + 1);
    const { value, listed } = this.#encode(key, state);
    this.#known?.add(key);
    const synced = options.synced !== false;
    const written = new Promise<void>((done, failed) => {
      this.#queue.push({ key: `${PREFIX}${key}`, value, listed, synced, done, failed });
      if (this.#flushing) return;
      // a synced save goes at once; commit markers wait for the end of this turn, to go with the turn's others
      if (synced) void this.#flush();
      else if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => {
          this.#flushScheduled = false;
          if (!this.#flushing) void this.#flush();
        });
      }
    });
    return written.then(
      () => {
        this.#settle(key);
        this.#remember(key, state);
      },
      (err: unknown) => {
        this.#settle(key);
        this.#cache.delete(key);
        throw err;
      },
    );
  }

  #settle(key: string): void {
    const left = (this.#unsettled.get(key) ?? 1) - 1;
    if (left > 0) this.#unsettled.set(key, left);
    else this.#unsettled.delete(key);
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      const writes = batch.flatMap(writesOf);
      const synced = batch.some((w) => w.synced);
      const generation = this.#generation + (synced ? 1 : 0);
      const encoded = Buffer.alloc(8);
      encoded.writeBigUInt64BE(BigInt(generation));
      try {
        if (synced) writes.push({ type: 'put', key: GENERATION_RECORD, value: encoded });
        await this.#store.batch(writes, { sync: synced });
        this.#generation = this.#durableGeneration = generation;
        for (const w of batch) w.done();
      } catch (err) {
        for (const w of batch) w.failed(err);
      }
    }
    this.#flushing = false;
  }

  /**
   * Writes `key`'s record again (a management-key rotation, `src/management-key/reseal.ts`): its values through
   * `reseal` (which answers undefined for a value it leaves as it is), the record itself under the sealing epoch
   * when `outerStale` says it is under another. Through the same synced batches as every save, and only when no
   * save of the key is on its way or came while it was read, so it never puts back an older state: 'busy' then,
   * and the next pass tries again.
   */
  async reseal(
    key: string,
    outerStale: boolean,
    reseal: (key: string, value: Uint8Array) => Uint8Array | undefined,
  ): Promise<'resealed' | 'current' | 'busy'> {
    if (this.#resealing.has(key)) return 'busy';
    this.#resealing.set(key, false);
    try {
      const stored = await this.#readStored(key);
      // removed meanwhile (a sweep, a restored directory's drop): nothing to write back
      if (!stored || (this.#known && !this.#known.has(key))) return 'current';
      const accepted = stored.accepted && reseal(key, stored.accepted.value);
      const committed = stored.committed && reseal(key, stored.committed);
      if (!accepted && !committed && !outerStale) return 'current';
      // a save on its way may already hold it sealed anew; the next pass looks again
      if (this.#resealing.get(key) || this.#unsettled.has(key)) return 'busy';
      const state: AcceptorState = {
        promised: stored.promised,
        ...(stored.accepted
          ? { accepted: { ballot: stored.accepted.ballot, value: accepted ?? stored.accepted.value } }
          : {}),
        ...(stored.committed ? { committed: committed ?? stored.committed } : {}),
      };
      await this.save(key, state);
      return 'resealed';
    } finally {
      this.#resealing.delete(key);
    }
  }

  /** Writes the generation record again (under the sealing epoch) with the next synced batch. */
  rewriteGeneration(): Promise<void> {
    return new Promise<void>((done, failed) => {
      this.#queue.push({ value: EMPTY, listed: [], synced: true, done, failed });
      if (!this.#flushing) void this.#flush();
    });
  }

  /**
   * Removes every expiring record whose expiry plus the grace has passed, and its index entries; returns how many
   * records it removed. Work is proportional to what it removes (plus one seek). A record whose value carries a
   * later expiry than the entry found (a promise-only record that got its value) is kept and listed at its own.
   */
  async sweep(): Promise<number> {
    if (!this.#clock) return 0;
    if (this.#touched) return 0;
    const cutoffS = Math.floor((this.#clock.now() - this.#graceMs) / 1000);
    // a save already on its way counts as one made during the sweep
    const touched = new Set<string>(this.#unsettled.keys());
    this.#touched = touched;
    try {
      return await this.#sweepTo(cutoffS, touched);
    } finally {
      this.#touched = undefined;
    }
  }

  async #sweepTo(cutoffS: number, touched: ReadonlySet<string>): Promise<number> {
    let removed = 0;
    for (;;) {
      const due: Array<{ entry: string; key: string }> = [];
      for await (const entry of this.#store.keys(EXPIRY_PREFIX)) {
        const parsed = parseExpiryIndexKey(entry);
        if (parsed && parsed.expiry > cutoffS) break;
        due.push({ entry, key: parsed?.key ?? '' });
        if (due.length >= SWEEP_BATCH) break;
      }
      if (due.length === 0) break;
      const expired: string[] = [];
      for (const { key } of due) {
        if (!key || !isExpiringKey(key)) continue;
        // the record's own expiry decides, not the entry's: a promise renewed, or a value that arrived, moves it
        const state = await this.#readStored(key).catch(() => undefined);
        const value = state?.committed ?? state?.accepted?.value;
        const own = value ? expiryOf(value) : state?.until;
        if (own !== undefined && own <= cutoffS) expired.push(key);
      }
      // a key saved since the sweep began keeps its record: that save may hold a promise an operation relies on
      const removable = expired.filter((key) => !touched.has(key));
      await this.#store.batch([
        ...due.map(({ entry }) => ({ type: 'del' as const, key: entry })),
        ...removable.map((key) => ({ type: 'del' as const, key: `${PREFIX}${key}` })),
      ]);
      for (const key of removable) {
        if (touched.has(key)) continue;
        this.#known?.delete(key);
        this.#cache.delete(key);
        this.#provisional.delete(key);
      }
      removed += removable.length;
      if (due.length < SWEEP_BATCH) break;
    }
    if (removed >= COMPACT_AFTER) await Promise.all([this.#store.compact(PREFIX), this.#store.compact(EXPIRY_PREFIX)]);
    return removed;
  }
}

type IndexOp = { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string };

/** A save on its way to disk; one without a key only has the synced batch write the generation again. */
interface QueuedWrite {
  readonly key?: string;
  readonly value: Uint8Array;
  readonly listed: IndexOp[];
  /** Whether the save must be on stable storage before it resolves (false only for a commit marker). */
  readonly synced: boolean;
  readonly done: () => void;
  readonly failed: (err: unknown) => void;
}

/** The store operations of a queued save. */
function writesOf(w: QueuedWrite): IndexOp[] {
  return [...(w.key === undefined ? [] : [{ type: 'put' as const, key: w.key, value: w.value }]), ...w.listed];
}

const EMPTY = new Uint8Array(0);

function indexKey(expiryS: number, key: string): string {
  return `${EXPIRY_PREFIX}${expiryS.toString(16).padStart(12, '0')}/${key}`;
}

function listing(expiryS: number, key: string): IndexOp {
  return { type: 'put', key: indexKey(expiryS, key), value: EMPTY };
}

function parseExpiryIndexKey(entry: string): { expiry: number; key: string } | undefined {
  const hex = entry.slice(EXPIRY_PREFIX.length, EXPIRY_PREFIX.length + 12);
  if (!/^[0-9a-f]{12}$/.test(hex) || entry[EXPIRY_PREFIX.length + 12] !== '/') return undefined;
  return { expiry: parseInt(hex, 16), key: entry.slice(EXPIRY_PREFIX.length + 13) };
}
