/**
 * The encryption keys of resource servers' POPs: the first `enc` key of the document at a resource server's
 * `jwksUri`, cached for as long as its `Cache-Control: max-age` allows (at most `IDP_JWKS_MAX_AGE_MS`) and fetched
 * again when it expired or when encrypting to it failed.
 */
import { importJWK, type JWK } from 'jose';
import type { Clock } from '../clock.js';
import { IDP_JWKS_MAX_AGE_MS, IDP_JWKS_TIMEOUT_MS } from '../config/defaults.js';
import { KeymeshError } from '../errors.js';

export interface PopKey {
  readonly kid: string | undefined;
  readonly alg: string;
  readonly key: Awaited<ReturnType<typeof importJWK>>;
}

const ENC_ALGS = new Set(['ECDH-ES+A256KW', 'ECDH-ES+A128KW', 'ECDH-ES+A192KW', 'ECDH-ES', 'RSA-OAEP-256', 'RSA-OAEP-384', 'RSA-OAEP-512']);

export class PopKeys {
  readonly #clock: Clock;
  readonly #cache = new Map<string, { key: PopKey; until: number }>();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * The current encryption key of the POP at `url`.
   * @throws KeymeshError `ERR_POP_UNAVAILABLE` when the POP cannot be fetched or has no usable `enc` key.
   */
  async get(url: string, fresh = false): Promise<PopKey> {
    const cached = this.#cache.get(url);
    if (!fresh && cached && cached.until > this.#clock.now()) return cached.key;
    let res: Response;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(IDP_JWKS_TIMEOUT_MS), headers: { accept: 'application/json' } });
    } catch (err) {
      throw new KeymeshError('ERR_POP_UNAVAILABLE', `the POP at ${url} cannot be reached: ${(err as Error).message}`, { cause: err });
    }
    if (!res.ok) throw new KeymeshError('ERR_POP_UNAVAILABLE', `the POP at ${url} answered ${res.status}`);
    let doc: { keys?: JWK[] };
    try {
      doc = (await res.json()) as { keys?: JWK[] };
    } catch {
      throw new KeymeshError('ERR_POP_UNAVAILABLE', `the POP at ${url} is not JSON`);
    }
    const jwk = (Array.isArray(doc.keys) ? doc.keys : []).find((k) => k && k.use === 'enc' && typeof k.alg === 'string' && ENC_ALGS.has(k.alg));
    if (!jwk) throw new KeymeshError('ERR_POP_UNAVAILABLE', `the POP at ${url} publishes no encryption key`);
    let key: PopKey;
    try {
      key = { kid: jwk.kid, alg: jwk.alg!, key: await importJWK(jwk, jwk.alg) };
    } catch (err) {
      throw new KeymeshError('ERR_POP_UNAVAILABLE', `the POP at ${url} publishes an unusable encryption key`, { cause: err });
    }
    const maxAge = /max-age=(\d+)/.exec(res.headers.get('cache-control') ?? '')?.[1];
    const ttl = Math.min(IDP_JWKS_MAX_AGE_MS, maxAge === undefined ? 0 : Number(maxAge) * 1000);
    this.#cache.set(url, { key, until: this.#clock.now() + ttl });
    return key;
  }
}
