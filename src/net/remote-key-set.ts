/**
 * A remote JSON Web Key Set (an IDP's, a client's or a resource server's) for `jwtVerify`, fetched through a
 * {@link CappedFetcher}.
 *
 * jose's `createRemoteJWKSet` keeps its caching: the set is kept for `maxAgeMs`, fetched again on an unknown
 * `kid` at most every `cooldownMs`, and one reload at a time per set. Only the fetch itself is replaced (jose's
 * `customFetch` option), so a key set is bound like every outbound fetch: no redirects, https except to
 * loopback, at most `OUTBOUND_FETCH_MAX_BYTES`, within `OUTBOUND_FETCH_TIMEOUT_MS`. A failed fetch surfaces from
 * `jwtVerify` as the fetcher's {@link KeymeshError} (by default `ERR_IDP_UNAVAILABLE`, with a message that does
 * not name the target), unchanged by jose.
 *
 * A failed fetch is remembered for `failureHoldMs`: until then every lookup fails at once with the same error and
 * nothing is fetched, so callers that present assertions for a client whose key set is down cannot turn each
 * request into an outbound fetch (jose starts its cooldown only after a fetch succeeded).
 */
import { createRemoteJWKSet, customFetch, type FetchImplementation, type RemoteJWKSet } from 'jose';
import { IDP_JWKS_COOLDOWN_MS, IDP_JWKS_MAX_AGE_MS } from '../config/defaults.js';
import type { ErrorCode } from '../errors.js';
import { CappedFetcher } from './capped-fetch.js';

export type { RemoteJWKSet } from 'jose';

/** Options of {@link remoteKeySet}. */
export interface RemoteKeySetOptions {
  /** The fetcher to go through; share one per node. Default is a new {@link CappedFetcher} with its defaults. */
  readonly fetcher?: CappedFetcher;
  /** The code of the error a failed fetch throws. Default is `ERR_IDP_UNAVAILABLE` (503). */
  readonly code?: ErrorCode;
  /** Its message; must not name the URL. Default is "the key set could not be fetched". */
  readonly message?: string;
  /** Least time between two fetches caused by an unknown `kid`, in ms. Default is `IDP_JWKS_COOLDOWN_MS`, 30000 (30 s). */
  readonly cooldownMs?: number;
  /** How long a fetched set is used before it is fetched again, in ms. Default is `IDP_JWKS_MAX_AGE_MS`, 600000 (10 min). */
  readonly maxAgeMs?: number;
  /** How long a failed fetch is answered from memory before the set is fetched again, in ms. Default is 5000 (5 s). */
  readonly failureHoldMs?: number;
  /** Milliseconds of a monotonic clock, for the failure hold. Default is `performance.now`. */
  readonly now?: () => number;
}

/** How long a failed key-set fetch is answered from memory. Default is 5000 ms (5 s). */
export const KEY_SET_FAILURE_HOLD_MS = 5_000;

/**
 * A jose key resolver of the key set at `url`, fetched through the capped fetcher.
 * @throws TypeError when `url` is not a URL at all. Fetch failures are thrown later, by the resolver, as a
 *   KeymeshError of `options.code`.
 */
export function remoteKeySet(url: string | URL, options: RemoteKeySetOptions = {}): RemoteJWKSet {
  const fetcher = options.fetcher ?? new CappedFetcher();
  const failure = {
    code: options.code ?? 'ERR_IDP_UNAVAILABLE',
    message: options.message ?? 'the key set could not be fetched',
  } as const;
  // jose's own timeout signal is not passed on: the fetcher's timeout bounds the fetch, and a fetch shared by
  // several callers must not be aborted by one of them
  const now = options.now ?? (() => performance.now());
  const holdMs = options.failureHoldMs ?? KEY_SET_FAILURE_HOLD_MS;
  let held: { error: unknown; until: number } | undefined;
  const capped: FetchImplementation = async (href) => {
    if (held && now() < held.until) throw held.error;
    try {
      const doc = await fetcher.get(href, failure);
      held = undefined;
      return new Response(new Uint8Array(doc.body), { status: 200, headers: { 'content-type': 'application/json' } });
    } catch (err) {
      held = { error: err, until: now() + holdMs };
      throw err;
    }
  };
  return createRemoteJWKSet(new URL(url), {
    cooldownDuration: options.cooldownMs ?? IDP_JWKS_COOLDOWN_MS,
    cacheMaxAge: options.maxAgeMs ?? IDP_JWKS_MAX_AGE_MS,
    [customFetch]: capped,
  });
}
