/**
 * The public documents of a realm, built once per key-set change and served as ready bytes:
 *
 * - `jwks`: the signing keys (pending, active, retired): `GET /.well-known/jwks.json`.
 * - `pop`: the keys a client encrypts to (`enc`, active first, then pending) followed by the signing keys:
 *   `GET /pop`. A client encrypts to the first `enc` key.
 *
 * The bytes are deterministic (fixed key order and member order), so every node with the same keys serves the
 * same bytes and the same `ETag`, and a cache in front of several nodes revalidates with 304s. A cached document is
 * rebuilt when the keyring changes, when the next key state change falls due, or when the active key changed (the
 * rotation schedule looks every second, so a key the activation gate lets through shows within a second).
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { KeyEntry } from './key-entry.js';
import type { Keyring } from './keyring.js';
import { comparePreference, isHeldBack, nextChange } from './lifecycle.js';

/** Which document. */
export type JwksKind = 'jwks' | 'pop';

/** A document ready to send. */
export interface JwksDocument {
  readonly body: Buffer;
  /** Strong ETag, quoted: the digest of the body. */
  readonly etag: string;
  readonly cacheControl: string;
  /** The kids in the document, in order. */
  readonly kids: readonly string[];
}

interface Cached {
  readonly version: number;
  readonly activeEpoch: number;
  readonly validUntil: number;
  readonly doc: JwksDocument;
}

/** Builds and caches the JWKS and POP documents of every realm. */
export class JwksView {
  readonly #keyring: Keyring;
  readonly #clock: Clock;
  readonly #cacheControl: string;
  readonly #cache = new Map<string, Cached>();

  constructor(options: { keyring: Keyring; clock: Clock; maxAgeMs: number }) {
    this.#keyring = options.keyring;
    this.#clock = options.clock;
    this.#cacheControl = `public, max-age=${Math.floor(options.maxAgeMs / 1000)}`;
  }

  /** The document of `kind` for `realm`. */
  document(realm: string, kind: JwksKind): JwksDocument {
    const now = this.#clock.now();
    const id = `${kind}|${realm}`;
    const cached = this.#cache.get(id);
    if (
      cached &&
      cached.version === this.#keyring.version &&
      cached.activeEpoch === this.#keyring.activeEpoch &&
      now < cached.validUntil
    )
      return cached.doc;
    const keys = this.#keyring.list({ realm }).filter((k) => k.use !== 'secret');
    const doc = this.#build(realm, kind, keys, now);
    this.#cache.set(id, {
      version: this.#keyring.version,
      activeEpoch: this.#keyring.activeEpoch,
      validUntil: nextChange(keys, now),
      doc,
    });
    return doc;
  }

  #build(realm: string, kind: JwksKind, keys: KeyEntry[], now: number): JwksDocument {
    const published = keys.filter((k) => this.#keyring.isPublished(k)).sort(comparePreference);
    const sig = byState(
      published.filter((k) => k.use === 'sig'),
      this.#keyring.active(realm, 'sig'),
      now,
    );
    const enc = byState(
      published.filter((k) => k.use === 'enc'),
      this.#keyring.active(realm, 'enc'),
      now,
    );
    const chosen =
      kind === 'jwks' ? [...sig.current, ...sig.retired] : [...enc.current, ...sig.current, ...sig.retired];
    const body = Buffer.from(JSON.stringify({ keys: chosen.map((k) => canonicalJwk(k)) }));
    const etag = `"${createHash('sha256').update(body).digest('base64url')}"`;
    return { body, etag, cacheControl: this.#cacheControl, kids: chosen.map((k) => k.kid) };
  }
}

/**
 * Splits published keys of one use (sorted by preference) into the current ones (the active key first, then
 * pending keys, soonest first) and the retired ones. A key the activation gate holds back is pending, as
 * `Keyring.state` says: were it counted as retired, the POP would drop an `enc` key between its activation time and
 * the moment every live member publishes it, and list it again once the gate opens.
 */
function byState(
  keys: KeyEntry[],
  activeKey: KeyEntry | undefined,
  now: number,
): { current: KeyEntry[]; retired: KeyEntry[] } {
  const active = keys.find((k) => k.kid === activeKey?.kid);
  const isPending = (k: KeyEntry) => k.activateAt > now || isHeldBack(k, active, now);
  const pending = keys
    .filter((k) => k !== active && isPending(k))
    .sort((a, b) => a.activateAt - b.activateAt || (a.kid < b.kid ? -1 : 1));
  const retired = keys.filter((k) => k !== active && !isPending(k));
  return { current: [...(active ? [active] : []), ...pending], retired };
}

const MEMBER_ORDER = ['kty', 'kid', 'use', 'alg', 'crv', 'x', 'y', 'n', 'e'];

function canonicalJwk(key: KeyEntry): Record<string, unknown> {
  const jwk = key.publicJwk as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const m of MEMBER_ORDER) if (jwk[m] !== undefined) out[m] = jwk[m];
  return out;
}
