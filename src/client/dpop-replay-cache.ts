/**
 * The replay records of DPoP proofs at a resource server (`keymeshAuth` with `dpop`), in this process: the
 * `recordOnce` of a {@link DpopVerifier}. Each record lives until the proof it stands for could no longer pass the
 * verifier's `iat` check (the `expiresAtS` the verifier gives), then it is forgotten; there are at most
 * `maxEntries` of them.
 *
 * When the cache is full of live records it refuses (fails closed) rather than evicting one: a record evicted
 * before its proof expired would let that proof be replayed, so an attacker holding one valid token could flush
 * the cache with fresh proofs of its own and then replay a captured proof. Refusing costs availability only while
 * such a flood lasts, and keeps memory bounded. Records are made only for proofs whose access token verified
 * (`keymeshAuth` calls `record()` last), so filling the cache takes a valid token bound to the proof's key.
 *
 * Expiry runs on the injected wall clock, the clock the proof's `iat` is checked against: if that clock stepped
 * back, an old proof would pass the `iat` check again, and so its record must still be there.
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.js';
import { KeymeshError } from '../errors.js';
import type { DpopRecordOnce } from '../tokens/dpop.js';

/**
 * Most DPoP proofs one `keymeshAuth` remembers at once. A record lives about 61 s for a proof issued now (up to
 * 121 s for one dated ahead), so this sustains about 1600 DPoP requests a second, in some tens of MB at most.
 * Default is 100000.
 */
export const DPOP_REPLAY_MAX_ENTRIES = 100_000;
/** Shortest time between two sweeps of expired records while the cache is full, in milliseconds. Default is 1000 (1 second). */
export const DPOP_REPLAY_SWEEP_INTERVAL_MS = 1_000;

export interface DpopReplayCacheOptions {
  /** Wall clock, the one proofs' `iat` is checked against. */
  readonly clock: Clock;
  /** Most records kept at once; a positive integer. Default is 100000 ({@link DPOP_REPLAY_MAX_ENTRIES}). */
  readonly maxEntries?: number;
}

export class DpopReplayCache {
  readonly #clock: Clock;
  readonly #maxEntries: number;
  readonly #records: LRUCache<string, true>;
  #nextSweepAtMs = -Infinity;

  /** @throws KeymeshError `ERR_INVALID_REQUEST` when `maxEntries` is not a positive integer. */
  constructor(options: DpopReplayCacheOptions) {
    const maxEntries = options.maxEntries ?? DPOP_REPLAY_MAX_ENTRIES;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1)
      throw new KeymeshError('ERR_INVALID_REQUEST', 'dpop.maxReplayEntries must be a positive integer');
    this.#clock = options.clock;
    this.#maxEntries = maxEntries;
    // ttlResolution 0: read the clock on every check (no cached "now", no timers); no autopurge timers either:
    // expired records are swept when the cache is full, and a lookup never sees one.
    this.#records = new LRUCache<string, true>({
      max: maxEntries,
      ttlResolution: 0,
      ttlAutopurge: false,
      perf: { now: () => this.#clock.now() },
    });
  }

  /** Records held, expired ones not yet swept included. */
  get size(): number {
    return this.#records.size;
  }

  /**
   * True the first time `key` is recorded, false while its record lives (until `expiresAtS`, seconds since the epoch).
   * @throws KeymeshError `ERR_UNAVAILABLE` when the cache is full of live records (fail closed, see above).
   */
  readonly recordOnce: DpopRecordOnce = async (key, expiresAtS) => {
    if (this.#records.has(key)) return false;
    const ttlMs = Math.ceil(expiresAtS * 1000 - this.#clock.now());
    // already past the iat window: the proof cannot pass again, so there is nothing to remember
    if (ttlMs <= 0) return true;
    if (this.#records.size >= this.#maxEntries && !this.#sweep()) {
      throw new KeymeshError(
        'ERR_UNAVAILABLE',
        `the DPoP replay cache is full (${this.#maxEntries} proofs within their iat window); retry shortly`,
      );
    }
    this.#records.set(key, true, { ttl: ttlMs });
    return true;
  };

  /** Removes expired records, at most once per sweep interval (a sweep walks every record); true if room was made. */
  #sweep(): boolean {
    const now = this.#clock.now();
    if (now < this.#nextSweepAtMs) return false;
    this.#nextSweepAtMs = now + DPOP_REPLAY_SWEEP_INTERVAL_MS;
    this.#records.purgeStale();
    return this.#records.size < this.#maxEntries;
  }
}
