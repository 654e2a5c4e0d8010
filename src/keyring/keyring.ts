/**
 * The keyring: every key this node holds, in memory and sealed on disk under `key/<realm>/<use>/<kid>`.
 *
 * Writes are synced before the keyring changes in memory, so a key is never used, published or announced before
 * it would survive a crash. Records are immutable except for revocation. Loading reports records that fail their
 * seal check and never serves them. Every change bumps the key-set `version` and emits `keys:changed`.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Clock } from '../clock.js';
import { isKeymeshError, KeymeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { SealedStore } from '../storage/sealed-store.js';
import { KeyEntry } from './key-entry.js';
import { decodeKeyRecord, encodeKeyRecord, type KeyUse } from './key-record.js';
import { chooseActive, isExpired, isPublished, keyState, type KeyState } from './lifecycle.js';

const KEY_PREFIX = 'key/';
const VERSION_KEY = 'keyring/version';

/** What the keyring needs. */
export interface KeyringOptions {
  readonly store: SealedStore;
  readonly clock: Clock;
  readonly log: Logger;
}

/** Events of the keyring. */
export interface KeyringEvents {
  'keys:changed': [];
}

/** The keys of one node. */
export class Keyring extends EventEmitter<KeyringEvents> {
  readonly #store: SealedStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #keys = new Map<string, KeyEntry>();
  #version = 0;
  #corrupt: string[] = [];

  constructor(options: KeyringOptions) {
    super();
    this.#store = options.store;
    this.#clock = options.clock;
    this.#log = options.log;
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
        if (`${KEY_PREFIX}${key.realm}/${key.use}/${key.kid}` !== entry.key) throw new KeymeshError('ERR_RECORD_CORRUPT', `record ${entry.key} holds a different key`);
        this.#keys.set(key.kid, key);
      } catch (err) {
        if (!isKeymeshError(err, 'ERR_RECORD_CORRUPT')) throw err;
        this.#reportCorrupt(entry.key, err);
      }
    }
    try {
      const v = await this.#store.get(VERSION_KEY);
      this.#version = v && v.length === 8 ? Number(v.readBigUInt64BE()) : 0;
    } catch (err) {
      if (!isKeymeshError(err, 'ERR_RECORD_CORRUPT')) throw err;
      this.#reportCorrupt(VERSION_KEY, err);
      this.#version = this.#keys.size;
    }
  }

  /** Records that failed their seal or format check at load. */
  get corruptRecords(): readonly string[] {
    return this.#corrupt;
  }

  /** A counter that grows with every change of the key set on this node. */
  get version(): number {
    return this.#version;
  }

  /** SHA-256 (base64url) over every known key's kid, realm, use and revocation: equal sets, equal digests. */
  digest(): string {
    const lines = [...this.#keys.values()].map((k) => `${k.kid}|${k.realm}|${k.use}|${k.revokedAt ?? ''}`).sort();
    return createHash('sha256').update(lines.join('\n')).digest('base64url');
  }

  get(kid: string): KeyEntry | undefined {
    return this.#keys.get(kid);
  }

  /** Every key (of a realm and use, when given), unordered. */
  list(filter: { realm?: string; use?: KeyUse } = {}): KeyEntry[] {
    return [...this.#keys.values()].filter((k) => (filter.realm === undefined || k.realm === filter.realm) && (filter.use === undefined || k.use === filter.use));
  }

  /** The key of `realm` and `use` to sign or encrypt with now, if any. */
  active(realm: string, use: KeyUse): KeyEntry | undefined {
    return chooseActive(this.list({ realm, use }), this.#clock.now());
  }

  /** @throws KeymeshError `ERR_NO_ACTIVE_KEY` when no key of `realm` and `use` may be used now. */
  requireActive(realm: string, use: KeyUse): KeyEntry {
    const key = this.active(realm, use);
    if (!key) throw new KeymeshError('ERR_NO_ACTIVE_KEY', `no active ${use} key in realm ${realm}`);
    return key;
  }

  /** Keys of `realm` and `use` that are published now. */
  published(realm: string, use: KeyUse): KeyEntry[] {
    const now = this.#clock.now();
    return this.list({ realm, use }).filter((k) => isPublished(k, now));
  }

  /** The state of `key` now. */
  state(key: KeyEntry): KeyState {
    return keyState(key, this.#clock.now(), this.active(key.realm, key.use)?.kid);
  }

  /** Stores a new key (synced). Returns false when the kid is already known. */
  async add(key: KeyEntry): Promise<boolean> {
    if (this.#keys.has(key.kid)) return false;
    await this.#write(key);
    this.#keys.set(key.kid, key);
    this.emit('keys:changed');
    return true;
  }

  /**
   * Revokes a key at once: it is unpublished and never used again. Revoking a revoked key changes nothing.
   * @throws KeymeshError `ERR_UNKNOWN_KEY` when no key has that kid.
   */
  async revoke(kid: string): Promise<KeyEntry> {
    const key = this.#keys.get(kid);
    if (!key) throw new KeymeshError('ERR_UNKNOWN_KEY', `no key with kid ${kid}`);
    if (key.revokedAt !== undefined) return key;
    const revoked = key.revoked(this.#clock.now());
    await this.#write(revoked);
    this.#keys.set(kid, revoked);
    this.#log.warn({ kid, realm: key.realm, use: key.use }, 'key revoked');
    this.emit('keys:changed');
    return revoked;
  }

  /** Deletes expired keys (revoked ones included) from memory and disk. Returns how many. */
  async sweep(): Promise<number> {
    const now = this.#clock.now();
    const expired = [...this.#keys.values()].filter((k) => isExpired(k, now));
    if (expired.length === 0) return 0;
    const version = this.#version + 1;
    await this.#store.batch(
      [...expired.map((k) => ({ type: 'del' as const, key: recordKey(k) })), { type: 'put' as const, key: VERSION_KEY, value: encodeVersion(version) }],
      { sync: true },
    );
    this.#version = version;
    for (const k of expired) this.#keys.delete(k.kid);
    this.#log.info({ kids: expired.map((k) => k.kid) }, 'expired keys deleted');
    this.emit('keys:changed');
    return expired.length;
  }

  async #write(key: KeyEntry): Promise<void> {
    const version = this.#version + 1;
    await this.#store.batch(
      [
        { type: 'put', key: recordKey(key), value: encodeKeyRecord(key.toRecord()) },
        { type: 'put', key: VERSION_KEY, value: encodeVersion(version) },
      ],
      { sync: true },
    );
    this.#version = version;
  }

  #reportCorrupt(key: string, err: KeymeshError): void {
    this.#corrupt.push(key);
    this.#log.error({ record: key, code: err.code }, err.message);
  }
}

function recordKey(key: KeyEntry): string {
  return `${KEY_PREFIX}${key.realm}/${key.use}/${key.kid}`;
}

function encodeVersion(version: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(version));
  return b;
}
