/**
 * The keyring: every key this node holds, in memory and sealed on disk under `key/<realm>/<use>/<kid>`.
 *
 * Writes are synced before the keyring changes in memory, so a key is never used, published or announced before
 * it would survive a crash. Records are immutable except for revocation; a record from a peer merges by union,
 * keeping the earliest revocation, so a revocation is never undone. Loading reports records that fail their seal
 * check and never serves them. Every change bumps the key-set `version` and emits `keys:changed`.
 *
 * Past its planned `retireAt` (when the activation gate holds its successor back) a key may stay in use only while
 * whatever it signs or encrypts still expires, with clock skew and cache lifetimes, before the key's planned
 * `expireAt` (`usableMarginMs`): every node drops a key at that planned expiry, and none has to learn that another
 * kept it longer. Past that, nothing is signed or encrypted (`ERR_NO_ACTIVE_KEY`) until a successor passes the
 * gate. Without a margin (unit tests of the older rule), the key's effective expiry moves by as long as it
 * overstayed instead (see `overstays.ts`).
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Clock } from '../clock.js';
import { isKeymeshError, KeymeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SealedStore } from '../storage/sealed-store.js';
import { KeyEntry, type KeyInfo } from './key-entry.js';
import { decodeKeyRecord, encodeKeyRecord, type KeyRecord, type KeyUse } from './key-record.js';
import { chooseActive, isHeldBack, type ActivationGate, type KeyState } from './lifecycle.js';
import { Overstays } from './overstays.js';

const KEY_PREFIX = 'key/';
const VERSION_KEY = 'keyring/version';

/** What the keyring needs. */
export interface KeyringOptions {
  readonly store: SealedStore;
  readonly clock: Clock;
  readonly log: Logger;
  /**
   * How long before its planned `expireAt` a key that overstays its retirement stops being used (ms): the longest
   * lifetime of what it makes, plus clock skew, plus the JWKS cache lifetime for published keys.
   */
  readonly usableMarginMs?: (key: KeyInfo) => number;
}

/** One change of the key set. `origin` tells a change made here from one learned from a peer. */
export interface KeyChange {
  readonly kind: 'added' | 'revoked' | 'expired';
  readonly key: KeyEntry;
  readonly origin: 'local' | 'remote';
}

/** Events of the keyring. */
export interface KeyringEvents {
  'keys:changed': [change: KeyChange];
}

/** What merging a record from a peer did. */
export type MergeResult = 'added' | 'revoked' | 'unchanged' | 'expired';

/** The keys of one node. */
export class Keyring extends EventEmitter<KeyringEvents> {
  readonly #store: SealedStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #keys = new Map<string, KeyEntry>();
  readonly #overstays: Overstays;
  readonly #usableMarginMs: ((key: KeyInfo) => number) | undefined;
  /** Kids this node has used since it started: the gate decides when to start using a key, not whether to go on. */
  readonly #used = new Set<string>();
  readonly #chosen = new Map<string, string>();
  #activeEpoch = 0;
  #gate: ActivationGate = () => true;
  #version = 0;
  #digest: { version: number; value: string } | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #corrupt: string[] = [];

  constructor(options: KeyringOptions) {
    super();
    this.#store = options.store;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#overstays = new Overstays(options.store, options.log);
    this.#usableMarginMs = options.usableMarginMs;
  }

  /** Loads every stored key; corrupt records are logged, listed in `corruptRecords`, and skipped. */
  async load(): Promise<void> {
    this.#keys.clear();
    this.#corrupt = [];
    for await (const entry of this.#store.scan(KEY_PREFIX)) {
      if ('error' in entry) {
        this.#reportCorrupt(entry.key, entry.error);
        continue;
      }
      try {
        const key = new KeyEntry(decodeKeyRecord(entry.value, entry.key));
        if (recordKey(key) !== entry.key)
          throw new KeymeshError('ERR_RECORD_CORRUPT', `record ${entry.key} holds a different key`);
        this.#keys.set(key.kid, key);
      } catch (err) {
        if (!isKeymeshError(err, 'ERR_RECORD_CORRUPT')) throw err;
        this.#reportCorrupt(entry.key, err);
      }
    }
    await this.#overstays.load();
    try {
      const v = await this.#store.get(VERSION_KEY);
      this.#version = v && v.length === 8 ? Number(v.readBigUInt64BE()) : 0;
    } catch (err) {
      if (!isKeymeshError(err, 'ERR_RECORD_CORRUPT')) throw err;
      this.#reportCorrupt(VERSION_KEY, err);
      this.#version = this.#keys.size;
    }
  }

  /** Installs the activation gate (the cluster's); without one every key may activate on schedule. */
  useActivationGate(gate: ActivationGate): void {
    this.#gate = gate;
  }

  /** Records that failed their seal or format check at load. */
  get corruptRecords(): readonly string[] {
    return this.#corrupt;
  }

  /**
   * A counter that grows whenever `active()` finds a different key than before for some realm and use (a slot
   * boundary, or the activation gate opening). Views built from the active keys are stale when it changed.
   */
  get activeEpoch(): number {
    return this.#activeEpoch;
  }

  /** A counter that grows with every change of the key set on this node. */
  get version(): number {
    return this.#version;
  }

  /** SHA-256 (base64url) over every known key's kid, realm, use and revocation: equal sets, equal digests. */
  digest(): string {
    if (this.#digest?.version !== this.#version) {
      const lines = [...this.#keys.values()].map((k) => `${k.kid}|${k.realm}|${k.use}|${k.revokedAt ?? ''}`).sort();
      this.#digest = {
        version: this.#version,
        value: createHash('sha256').update(lines.join('\n')).digest('base64url'),
      };
    }
    return this.#digest.value;
  }

  get(kid: string): KeyEntry | undefined {
    return this.#keys.get(kid);
  }

  /** Every key (of a realm and use, when given), unordered. */
  list(filter: { realm?: string; use?: KeyUse } = {}): KeyEntry[] {
    return [...this.#keys.values()].filter(
      (k) =>
        (filter.realm === undefined || k.realm === filter.realm) && (filter.use === undefined || k.use === filter.use),
    );
  }

  /** The key of `realm` and `use` to sign or encrypt with now, if any (the activation gate applies). */
  active(realm: string, use: KeyUse): KeyEntry | undefined {
    const now = this.#clock.now();
    const margin = this.#usableMarginMs;
    const stillUsable = (k: KeyInfo) => margin === undefined || now < k.retireAt || now < k.expireAt - margin(k);
    const chosen = chooseActive(
      this.list({ realm, use }),
      now,
      (k) => stillUsable(k) && (this.#used.has(k.kid) || this.#gate(k)),
    );
    if (chosen) this.#used.add(chosen.kid);
    if (chosen?.kid !== this.#chosen.get(`${realm}|${use}`)) {
      this.#activeEpoch += 1;
      if (chosen) this.#chosen.set(`${realm}|${use}`, chosen.kid);
      else this.#chosen.delete(`${realm}|${use}`);
    }
    if (chosen && now > chosen.retireAt) this.#overstays.record(chosen, now);
    return chosen;
  }

  /** @throws KeymeshError `ERR_NO_ACTIVE_KEY` when no key of `realm` and `use` may be used now. */
  requireActive(realm: string, use: KeyUse): KeyEntry {
    const key = this.active(realm, use);
    if (!key) throw new KeymeshError('ERR_NO_ACTIVE_KEY', `no active ${use} key in realm ${realm}`);
    return key;
  }

  /**
   * When `key` stops being published: its planned expiry, moved later by as long as it was still chosen past its
   * planned retirement.
   */
  effectiveExpireAt(key: KeyEntry): number {
    return this.#usableMarginMs === undefined ? this.#overstays.effectiveExpireAt(key) : key.expireAt;
  }

  /** True while `key` may verify and decrypt: published, not revoked, not (effectively) expired. */
  isPublished(key: KeyEntry): boolean {
    const now = this.#clock.now();
    return key.revokedAt === undefined && now >= key.publishAt && now < this.effectiveExpireAt(key);
  }

  /** Keys of `realm` and `use` that are published now. */
  published(realm: string, use: KeyUse): KeyEntry[] {
    return this.list({ realm, use }).filter((k) => this.isPublished(k));
  }

  /** The state of `key` now. */
  state(key: KeyEntry): KeyState {
    const now = this.#clock.now();
    if (key.revokedAt !== undefined) return 'revoked';
    if (now >= this.effectiveExpireAt(key)) return 'expired';
    const active = this.active(key.realm, key.use);
    if (active?.kid === key.kid) return 'active';
    return now < key.activateAt || isHeldBack(key, active, now) ? 'pending' : 'retired';
  }

  /** Stores a new key made here (synced). Returns false when the kid is already known. */
  add(key: KeyEntry): Promise<boolean> {
    return this.#exclusive(() => this.#add(key));
  }

  async #add(key: KeyEntry): Promise<boolean> {
    if (this.#keys.has(key.kid)) return false;
    await this.#write(key);
    this.#apply(() => this.#keys.set(key.kid, key));
    this.emit('keys:changed', { kind: 'added', key, origin: 'local' });
    return true;
  }

  /**
   * Merges a record learned from a peer: a new key is added, a revocation is applied (the earliest wins),
   * anything else changes nothing. Records already expired are ignored.
   */
  merge(record: KeyRecord, via: 'gossip' | 'sync' = 'gossip'): Promise<MergeResult> {
    return this.#exclusive(() => this.#merge(record, via));
  }

  async #merge(record: KeyRecord, via: 'gossip' | 'sync'): Promise<MergeResult> {
    if (this.#clock.now() >= record.expireAt) return 'expired';
    const existing = this.#keys.get(record.kid);
    if (!existing) {
      const key = new KeyEntry(record);
      await this.#write(key, false);
      this.#apply(() => this.#keys.set(key.kid, key));
      this.#log.info(
        { kid: key.kid, realm: key.realm, use: key.use, createdBy: key.createdBy, via },
        'key learned from a peer',
      );
      this.emit('keys:changed', { kind: 'added', key, origin: 'remote' });
      return 'added';
    }
    if (record.revokedAt === undefined || (existing.revokedAt !== undefined && existing.revokedAt <= record.revokedAt))
      return 'unchanged';
    const revoked = new KeyEntry({ ...existing.toRecord(), revokedAt: record.revokedAt });
    await this.#write(revoked, false);
    this.#apply(() => this.#keys.set(revoked.kid, revoked));
    this.#log.warn({ kid: revoked.kid, realm: revoked.realm, use: revoked.use }, 'key revoked by a peer');
    this.emit('keys:changed', { kind: 'revoked', key: revoked, origin: 'remote' });
    return 'revoked';
  }

  /**
   * Revokes a key at once: it is unpublished and never used again. Revoking a revoked key changes nothing.
   * @throws KeymeshError `ERR_UNKNOWN_KEY` when no key has that kid.
   */
  revoke(kid: string): Promise<KeyEntry> {
    return this.#exclusive(() => this.#revoke(kid));
  }

  async #revoke(kid: string): Promise<KeyEntry> {
    const key = this.#keys.get(kid);
    if (!key) throw new KeymeshError('ERR_UNKNOWN_KEY', `no key with kid ${kid}`);
    if (key.revokedAt !== undefined) return key;
    const revoked = key.revoked(this.#clock.now());
    await this.#write(revoked);
    this.#apply(() => this.#keys.set(kid, revoked));
    this.#log.warn({ kid, realm: key.realm, use: key.use }, 'key revoked');
    this.emit('keys:changed', { kind: 'revoked', key: revoked, origin: 'local' });
    return revoked;
  }

  /** Deletes keys past their effective expiry (revoked ones included) from memory and disk. Returns how many. */
  sweep(): Promise<number> {
    return this.#exclusive(() => this.#sweep());
  }

  async #sweep(): Promise<number> {
    const now = this.#clock.now();
    const expired = [...this.#keys.values()].filter((k) => now >= this.effectiveExpireAt(k));
    if (expired.length === 0) return 0;
    const version = this.#version + 1;
    await this.#store.batch(
      [
        ...expired.flatMap((k) => [
          { type: 'del' as const, key: recordKey(k) },
          { type: 'del' as const, key: this.#overstays.storeKey(k.kid) },
        ]),
        { type: 'put' as const, key: VERSION_KEY, value: encodeU64(version) },
      ],
      { sync: true },
    );
    this.#apply(() => {
      for (const k of expired) this.#keys.delete(k.kid);
    });
    for (const k of expired) {
      this.#overstays.forget(k.kid);
      this.#used.delete(k.kid);
      this.emit('keys:changed', { kind: 'expired', key: k, origin: 'local' });
    }
    this.#log.info({ kids: expired.map((k) => k.kid) }, 'expired keys deleted');
    return expired.length;
  }

  /** Runs key-set changes one at a time: a revocation can never be overwritten by a concurrent add of the same key. */
  #exclusive<T>(change: () => Promise<T>): Promise<T> {
    const run = this.#queue.catch(() => undefined).then(change);
    this.#queue = run;
    return run;
  }

  /**
   * Changes the in-memory key set and bumps the version in one synchronous step, so nothing built from the keys
   * (the digest, the JWKS documents) is ever cached under a version that does not match them.
   */
  #apply(mutate: () => void): void {
    mutate();
    this.#version += 1;
    this.#digest = undefined;
  }

  /**
   * Persists `key`. What this node made (a new key, a revocation) is synced before anyone hears of it. What it
   * learned from a peer is not: the peer holds it synced, and anti-entropy brings back whatever a power loss
   * takes, so a merge costs no fsync. Ten nodes learning a key at once used to queue ten fsyncs on a shared
   * disk, and the last node published the key 100–200 ms after the first.
   */
  async #write(key: KeyEntry, sync = true): Promise<void> {
    const version = this.#version + 1;
    await this.#store.batch(
      [
        { type: 'put', key: recordKey(key), value: encodeKeyRecord(key.toRecord()) },
        { type: 'put', key: VERSION_KEY, value: encodeU64(version) },
      ],
      { sync },
    );
  }

  #reportCorrupt(key: string, err: KeymeshError): void {
    this.#corrupt.push(key);
    this.#log.error({ record: key, code: err.code }, err.message);
  }
}

function recordKey(key: KeyEntry): string {
  return `${KEY_PREFIX}${key.realm}/${key.use}/${key.kid}`;
}

function encodeU64(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(value));
  return b;
}
