/**
 * Writes a verified snapshot's entries into the running cluster, a bounded number at a time, and counts what
 * happened to each. Register values go through the register's get-or-create, so a key that already holds a value
 * keeps it: the same value counts as `equal`, another as `conflicting` (reported, never overwritten). A read comes
 * first so that `written` counts only what this restore chose. Expiring records keep their expiry; those already
 * past it are `skipped`. Key records go through the keyring's merge, as records learned from a peer do, and reach
 * the other nodes by key sync.
 */
import { isKeymeshError } from '../errors.js';
import type { MergeResult } from '../keyring/keyring.js';
import type { KeyRecord } from '../keyring/key-record.js';
import { expiryOf, isExpiringKey, withoutExpiry } from '../register/expiring.js';
import { LOG_PREFIX, type RegistrationRestoreCounts } from '../registrations/restore.js';

/** Entries written at once. */
export const RESTORE_CONCURRENCY = 32;
/** Attempts of one register operation that found no majority. */
const ATTEMPTS = 4;
/** Back-off before a retry, times the attempt number (ms). */
const RETRY_BACKOFF_MS = 250;
/** Conflicting keys named in the report (the count has them all). */
const CONFLICTS_NAMED = 20;

/** Where a restore writes. */
export interface RestoreTarget {
  /** The chosen value of register `key` (without its expiry), or undefined. */
  read(key: string): Promise<Uint8Array | undefined>;
  /** Get-or-create of register `key`: the chosen value (without its expiry). */
  getOrCreate(key: string, candidate: Uint8Array, options: { expiresAt?: number }): Promise<Uint8Array | undefined>;
  mergeKey(record: KeyRecord): Promise<MergeResult>;
  /** Now (ms since the epoch). */
  now(): number;
  /** Creates the registrations the snapshot's registrations log (its slots, by register key) ends with. */
  registrations?(slots: ReadonlyMap<string, Uint8Array>): Promise<RegistrationRestoreCounts>;
}

/** What a restore did. */
export interface RestoreCounts {
  registers: { written: number; equal: number; conflicting: number; skipped: number };
  keys: { written: number; equal: number; skipped: number };
  /** The first conflicting register keys. */
  conflicts: string[];
  /** The registrations (`src/registrations/restore.ts`), when the target takes them. */
  registrations?: RegistrationRestoreCounts;
}

/** Applies entries with at most `RESTORE_CONCURRENCY` in flight; the first failure stops it. */
export class RestoreApplier {
  readonly #target: RestoreTarget;
  readonly #inFlight = new Set<Promise<void>>();
  /** The snapshot's registrations log, written last through the target's own log. */
  readonly #logSlots = new Map<string, Uint8Array>();
  #failure: { err: unknown } | undefined;
  readonly counts: RestoreCounts = {
    registers: { written: 0, equal: 0, conflicting: 0, skipped: 0 },
    keys: { written: 0, equal: 0, skipped: 0 },
    conflicts: [],
  };

  constructor(target: RestoreTarget) {
    this.#target = target;
  }

  /** Starts writing register `key`; waits while the window is full. Rethrows an earlier entry's failure. */
  async register(key: string, value: Uint8Array): Promise<void> {
    if (key.startsWith(LOG_PREFIX) && this.#target.registrations) {
      this.#logSlots.set(key, value);
      return;
    }
    await this.#room();
    const run = this.#register(key, value).catch((err: unknown) => {
      this.#failure ??= { err };
    });
    this.#inFlight.add(run);
    void run.finally(() => this.#inFlight.delete(run));
  }

  /** Merges a key record (after every register value is written). */
  async key(record: KeyRecord): Promise<void> {
    await this.drain();
    const result = await this.#target.mergeKey(record);
    if (result === 'added' || result === 'revoked') this.counts.keys.written += 1;
    else if (result === 'unchanged') this.counts.keys.equal += 1;
    else this.counts.keys.skipped += 1;
  }

  /** Waits for every write started; rethrows the first failure. */
  async drain(): Promise<void> {
    await Promise.all([...this.#inFlight]);
    if (this.#failure) throw this.#failure.err;
  }

  /** Creates the snapshot's registrations (after every other value is written). */
  async finish(): Promise<void> {
    await this.drain();
    if (this.#target.registrations) this.counts.registrations = await this.#target.registrations(this.#logSlots);
  }

  async #room(): Promise<void> {
    while (this.#inFlight.size >= RESTORE_CONCURRENCY) await Promise.race(this.#inFlight);
    if (this.#failure) throw this.#failure.err;
  }

  async #register(key: string, value: Uint8Array): Promise<void> {
    const counts = this.counts.registers;
    const expiring = isExpiringKey(key);
    const expiresAt = expiring ? expiryOf(value) : undefined;
    if (expiring && (expiresAt === undefined || expiresAt * 1000 <= this.#target.now())) {
      counts.skipped += 1;
      return;
    }
    const candidate = expiring ? withoutExpiry(value) : value;
    // what a read or a get-or-create gives back for this value once it is chosen
    const expected = Buffer.from(expiring ? candidate : withoutExpiry(candidate));
    const existing = await retried(() => this.#target.read(key));
    const chosen =
      existing ??
      (await retried(() => this.#target.getOrCreate(key, candidate, expiresAt === undefined ? {} : { expiresAt })));
    if (chosen && expected.equals(chosen)) {
      if (existing) counts.equal += 1;
      else counts.written += 1;
      return;
    }
    counts.conflicting += 1;
    if (this.counts.conflicts.length < CONFLICTS_NAMED) this.counts.conflicts.push(key);
  }
}

/** `op`, again after a back-off while it finds no majority (a get-or-create and a read are safe to repeat). */
async function retried<T>(op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      const retriable = isKeymeshError(err, 'ERR_UNAVAILABLE') || isKeymeshError(err, 'ERR_OUTCOME_UNKNOWN');
      if (!retriable || attempt >= ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, RETRY_BACKOFF_MS * attempt));
    }
  }
}
