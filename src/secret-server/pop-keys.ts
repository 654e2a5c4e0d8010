/**
 * The encryption keys of resource servers' POPs: the first `enc` key of the document at a resource server's
 * `jwksUri`, cached for as long as its `Cache-Control: max-age` allows (at most `IDP_JWKS_MAX_AGE_MS`) and fetched
 * again when it expired or when encrypting to it failed. Requests that need the same POP while it is being fetched
 * share that one fetch, so exchanges arriving together at a POP with no (or an expired) `max-age` cost the POP one
 * request, not one each.
 *
 * The POP is fetched through a {@link CappedFetcher}: no redirects, https except to loopback, at most
 * `OUTBOUND_FETCH_MAX_BYTES`, within `OUTBOUND_FETCH_TIMEOUT_MS`. Errors tell the caller only that the POP is
 * unusable; the URL and what the POP answered are in their `cause`, for the node log.
 */
import { importJWK, type JWK } from 'jose';
import type { Clock } from '../clock.js';
import { IDP_JWKS_MAX_AGE_MS } from '../config/defaults.js';
import { KeymeshError } from '../errors.js';
import { CappedFetcher, FetchFailure } from '../net/capped-fetch.js';

/** A resource server's POP encryption key, imported. */
export interface PopKey {
  readonly kid: string | undefined;
  readonly alg: string;
  readonly key: Awaited<ReturnType<typeof importJWK>>;
}

const ENC_ALGS = new Set([
  'ECDH-ES+A256KW',
  'ECDH-ES+A128KW',
  'ECDH-ES+A192KW',
  'ECDH-ES',
  'RSA-OAEP-256',
  'RSA-OAEP-384',
  'RSA-OAEP-512',
]);

/** Options of {@link PopKeys}. */
export interface PopKeysOptions {
  /** The fetcher to go through; share one per node. Default is a new {@link CappedFetcher} with its defaults. */
  readonly fetcher?: CappedFetcher;
}

/** The current encryption keys of resource servers' POPs, cached per URL. */
export class PopKeys {
  readonly #clock: Clock;
  readonly #fetcher: CappedFetcher;
  readonly #cache = new Map<string, { key: PopKey; until: number }>();
  /** The fetch under way per URL, shared by every caller that needs it meanwhile (its failure too). */
  readonly #fetching = new Map<string, Promise<PopKey>>();

  constructor(clock: Clock, options: PopKeysOptions = {}) {
    this.#clock = clock;
    this.#fetcher = options.fetcher ?? new CappedFetcher();
  }

  /**
   * The current encryption key of the POP at `url`; `fresh` skips the cache.
   * @throws KeymeshError `ERR_POP_UNAVAILABLE` (502) when the POP cannot be fetched under the fetcher's rules,
   *   is not JSON, or has no usable `enc` key. The message never names the URL or the POP's answer.
   */
  async get(url: string, fresh = false): Promise<PopKey> {
    const cached = this.#cache.get(url);
    if (!fresh && cached && cached.until > this.#clock.now()) return cached.key;
    // a fetch under way started after the cached key expired (or failed), so it is fresh enough for `fresh` too
    const under = this.#fetching.get(url);
    if (under) return under;
    const fetching = this.#fetch(url).finally(() => this.#fetching.delete(url));
    this.#fetching.set(url, fetching);
    return fetching;
  }

  async #fetch(url: string): Promise<PopKey> {
    const doc = await this.#fetcher.get(url, {
      code: 'ERR_POP_UNAVAILABLE',
      message: "the resource server's POP could not be fetched",
    });
    let parsed: { keys?: JWK[] } | null;
    try {
      parsed = JSON.parse(new TextDecoder().decode(doc.body)) as { keys?: JWK[] } | null;
    } catch (err) {
      throw unavailable(
        "the resource server's POP is not JSON",
        new FetchFailure(url, 'is not JSON', { status: doc.status, cause: err }),
      );
    }
    const keys = parsed && Array.isArray(parsed.keys) ? parsed.keys : [];
    const jwk = keys.find((k) => k && k.use === 'enc' && typeof k.alg === 'string' && ENC_ALGS.has(k.alg));
    if (!jwk)
      throw unavailable(
        "the resource server's POP publishes no encryption key",
        new FetchFailure(url, 'publishes no usable enc key', { status: doc.status }),
      );
    let key: PopKey;
    try {
      key = { kid: jwk.kid, alg: jwk.alg!, key: await importJWK(jwk, jwk.alg) };
    } catch (err) {
      throw unavailable(
        "the resource server's POP publishes an unusable encryption key",
        new FetchFailure(url, 'publishes an enc key that does not import', { status: doc.status, cause: err }),
      );
    }
    const maxAge = /max-age=(\d+)/.exec(doc.headers.get('cache-control') ?? '')?.[1];
    const ttl = Math.min(IDP_JWKS_MAX_AGE_MS, maxAge === undefined ? 0 : Number(maxAge) * 1000);
    this.#cache.set(url, { key, until: this.#clock.now() + ttl });
    return key;
  }
}

function unavailable(message: string, cause: FetchFailure): KeymeshError {
  return new KeymeshError('ERR_POP_UNAVAILABLE', message, { cause });
}
