/**
 * How the HTTP layer describes a key: the public metadata of `GET /v1/keys` and the cluster page, never the
 * private half. Times are ISO 8601 strings; `publishedOn` is on how many of how many nodes the key is published.
 */
import { KEY_USES } from '../config/defaults.js';
import type { KeyEntry } from '../keyring/key-entry.js';
import type { KeyState } from '../keyring/lifecycle.js';
import type { HttpDeps } from './deps.js';

/** One key as `GET /v1/keys` and `GET /ui/state` show it. */
export interface KeyDescription {
  kid: string;
  realm: string;
  use: KeyEntry['use'];
  alg: string;
  state: KeyState;
  createdAt: string;
  createdBy: string;
  publishAt: string;
  activateAt: string;
  retireAt: string;
  expireAt: string;
  effectiveExpireAt: string;
  revokedAt: string | undefined;
  publishedOn: { nodes: number; of: number };
}

/** Milliseconds since the epoch as an ISO 8601 string. */
export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** The public description of `key` as this node sees it now. */
export function describeKey(deps: Pick<HttpDeps, 'keyring' | 'publication'>, key: KeyEntry): KeyDescription {
  const { keyring } = deps;
  return {
    kid: key.kid,
    realm: key.realm,
    use: key.use,
    alg: key.alg,
    state: keyring.state(key),
    createdAt: isoTime(key.createdAt),
    createdBy: key.createdBy,
    publishAt: isoTime(key.publishAt),
    activateAt: isoTime(key.activateAt),
    retireAt: isoTime(key.retireAt),
    expireAt: isoTime(key.expireAt),
    effectiveExpireAt: isoTime(keyring.effectiveExpireAt(key)),
    revokedAt: key.revokedAt === undefined ? undefined : isoTime(key.revokedAt),
    publishedOn: deps.publication(key),
  };
}

/** Listing order: realm, then use (`sig`, `enc`, `secret`), then the latest activation first, then kid. */
export function compareKeys(a: KeyEntry, b: KeyEntry): number {
  return (
    a.realm.localeCompare(b.realm) ||
    KEY_USES.indexOf(a.use) - KEY_USES.indexOf(b.use) ||
    b.activateAt - a.activateAt ||
    a.kid.localeCompare(b.kid)
  );
}
