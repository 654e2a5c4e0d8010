/**
 * Authentication of registered resource servers (`resourceServers`) by RFC 7523 client assertions.
 *
 * A caller sends `client_assertion_type` = jwt-bearer and `client_assertion`: a JWT whose `iss` and `sub` are its
 * `clientId`, whose `aud` is one of this cluster's own identifiers (its issuer or the endpoint URL), with `exp`,
 * `jti` and a lifetime of at most `CLIENT_ASSERTION_MAX_LIFETIME_MS`, signed by a signing key from the resource
 * server's registered `jwksUri` (its POP). Each `jti` is recorded once through the replicated register, so a
 * replayed assertion is refused on every node, not only the one that saw it first. Its `typ` header, when present,
 * must be `JWT` or `client-authentication+jwt` (RFC 8725 §3.11 explicit typing; draft RFC 7523bis), so no other
 * typed JWT (an access token `at+jwt`, a DPoP proof `dpop+jwt`) passes as an assertion; a `crit` header is
 * refused. Key sets are fetched through the capped fetcher (no redirects, https except to loopback, bounded size
 * and time). Every failure is `ERR_INVALID_CLIENT` (401 `invalid_client`), except an unreachable key set
 * (`ERR_IDP_UNAVAILABLE`, 503); messages never repeat a library's message or what a key set's host answered.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  decodeJwt,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type ProtectedHeaderParameters,
} from 'jose';
import type { Clock } from '../clock.js';
import {
  CLIENT_ASSERTION_MAX_LIFETIME_MS,
  CLIENT_ASSERTION_TYPE,
  IDP_ALGS,
  IDP_JWKS_COOLDOWN_MS,
} from '../config/defaults.js';
import { isKeymeshError, KeymeshError } from '../errors.js';
import { CappedFetcher } from '../net/capped-fetch.js';
import { remoteKeySet, type RemoteJWKSet } from '../net/remote-key-set.js';

/** A registered resource server as configured. */
export interface ResourceServer {
  readonly audience: string;
  readonly clientId: string;
  readonly jwksUri: string;
  readonly userTokenAudiences: readonly string[];
}

/**
 * Records `key` once: resolves true the first time any node records it, false ever after, until `expiresAtS`
 * (seconds since the epoch) plus the tolerated clock skew, when the record may be forgotten: pass the expiry of
 * the thing recorded, after which it is refused anyway. Backed by the register's get-or-create.
 */
export type RecordOnce = (key: string, expiresAtS: number) => Promise<boolean>;

/** The `typ` values a client assertion may carry (compared case-insensitively, without an `application/` prefix). */
export const CLIENT_ASSERTION_TYPS: readonly string[] = ['jwt', 'client-authentication+jwt'];

/** Verifies RFC 7523 client assertions of registered resource servers (or clients) against their key sets. */
export class ClientAssertionVerifier {
  readonly #clients = new Map<string, { server: ResourceServer; keys: RemoteJWKSet }>();
  readonly #byAudience = new Map<string, ResourceServer>();
  readonly #acceptedAudiences: readonly string[];
  readonly #clock: Clock;
  readonly #clockSkewMs: number;
  readonly #recordOnce: RecordOnce;
  readonly #label: string;

  /**
   * `label` names the callers in errors: "resource server" (default) or, for the token service, "client".
   * `cooldownMs`: least time between key-set fetches on an unknown kid (default `IDP_JWKS_COOLDOWN_MS`, 30 s).
   * `fetcher`: the capped fetcher to share (default: a new one with its defaults).
   */
  constructor(options: {
    resourceServers: readonly ResourceServer[];
    acceptedAudiences: readonly string[];
    clock: Clock;
    clockSkewMs: number;
    recordOnce: RecordOnce;
    cooldownMs?: number;
    label?: string;
    fetcher?: CappedFetcher;
  }) {
    this.#label = options.label ?? 'resource server';
    this.#acceptedAudiences = options.acceptedAudiences;
    this.#clock = options.clock;
    this.#clockSkewMs = options.clockSkewMs;
    this.#recordOnce = options.recordOnce;
    const fetcher = options.fetcher ?? new CappedFetcher();
    const message = `the key set of the ${this.#label} could not be fetched`;
    for (const server of options.resourceServers) {
      const keys = remoteKeySet(server.jwksUri, {
        fetcher,
        code: 'ERR_IDP_UNAVAILABLE',
        message,
        cooldownMs: options.cooldownMs ?? IDP_JWKS_COOLDOWN_MS,
      });
      this.#clients.set(server.clientId, { server, keys });
      this.#byAudience.set(server.audience, server);
    }
  }

  /** The key set registered for `clientId` (fetched and cached as for its assertions), or undefined. */
  keySet(clientId: string): RemoteJWKSet | undefined {
    return this.#clients.get(clientId)?.keys;
  }

  /** The registered resource server of `audience`. @throws KeymeshError `ERR_UNKNOWN_AUDIENCE` */
  resourceServer(audience: string): ResourceServer {
    const server = this.#byAudience.get(audience);
    if (!server)
      throw new KeymeshError('ERR_UNKNOWN_AUDIENCE', 'an audience is not one this resource server may ask for');
    return server;
  }

  /**
   * The resource server that signed `assertion`.
   *
   * `alongside`, when given, is started with that server once the assertion verified (signature, claims, a
   * well-formed `jti`) and runs while its `jti` is recorded, so the record's round trip on the register overlaps
   * the caller's next steps. It is never started for an assertion that does not verify. This resolves only when
   * both settled, and rejects with the assertion's failure first (a replay, the register's error), then with
   * `alongside`'s. Until this resolves the caller is not authenticated: `alongside` must release nothing.
   * @throws KeymeshError `ERR_INVALID_CLIENT`, or `ERR_IDP_UNAVAILABLE` when its key set cannot be fetched; what
   *   `alongside` throws.
   */
  async verify(
    assertionType: string | undefined,
    assertion: string | undefined,
    alongside?: (server: ResourceServer) => Promise<unknown>,
  ): Promise<ResourceServer> {
    if (assertionType !== CLIENT_ASSERTION_TYPE || !assertion)
      throw invalid(
        `client authentication needs client_assertion_type ${CLIENT_ASSERTION_TYPE} and a client_assertion`,
      );
    let iss: string | undefined;
    let header: ProtectedHeaderParameters;
    try {
      iss = decodeJwt(assertion).iss;
      header = decodeProtectedHeader(assertion);
    } catch {
      throw invalid('the client assertion is not a JWT');
    }
    if (header.typ !== undefined && !isClientAssertionTyp(header.typ))
      throw invalid('the client assertion has a typ header other than JWT or client-authentication+jwt');
    if (header.crit !== undefined) throw invalid('the client assertion has a crit header');
    const client = iss === undefined ? undefined : this.#clients.get(iss);
    if (!client) throw invalid(`the client assertion is not from a registered ${this.#label}`);
    const now = this.#clock.now();
    let payload;
    try {
      ({ payload } = await jwtVerify(assertion, client.keys, {
        issuer: client.server.clientId,
        subject: client.server.clientId,
        audience: [...this.#acceptedAudiences],
        algorithms: [...IDP_ALGS],
        clockTolerance: Math.floor(this.#clockSkewMs / 1000),
        currentDate: new Date(now),
        requiredClaims: ['exp', 'jti'],
      }));
    } catch (err) {
      if (isKeymeshError(err)) throw err;
      const generic = err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC';
      if (
        generic ||
        err instanceof joseErrors.JWKSTimeout ||
        err instanceof joseErrors.JWKSInvalid ||
        !(err instanceof joseErrors.JOSEError)
      ) {
        throw new KeymeshError(
          'ERR_IDP_UNAVAILABLE',
          `the key set of the ${this.#label} could not be fetched or is not a key set`,
          { cause: err },
        );
      }
      throw invalid(
        err instanceof joseErrors.JWTExpired
          ? 'the client assertion has expired'
          : 'the client assertion does not verify',
        err,
      );
    }
    if (outlivesAssertionBound(payload, now, this.#clockSkewMs))
      throw invalid(`the client assertion lives longer than ${CLIENT_ASSERTION_MAX_LIFETIME_MS / 1000} s`);
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 128)
      throw invalid('the client assertion needs a jti of 1–128 characters');
    const recorded = recordJti(this.#recordOnce, client.server.clientId, payload.jti, payload.exp!);
    const [fresh, work] = await Promise.allSettled([recorded, (async () => alongside?.(client.server))()]);
    if (fresh.status === 'rejected') throw fresh.reason;
    if (!fresh.value) throw invalid('the client assertion was used before (replayed jti)');
    if (work.status === 'rejected') throw work.reason;
    return client.server;
  }
}

/** Whether an assertion lives longer than `CLIENT_ASSERTION_MAX_LIFETIME_MS` (counted from its `iat`, or now if earlier). */
export function outlivesAssertionBound(
  payload: { exp?: number; iat?: number },
  nowMs: number,
  clockSkewMs: number,
): boolean {
  const nowS = Math.floor(nowMs / 1000);
  return (payload.exp! - Math.min(payload.iat ?? nowS, nowS)) * 1000 > CLIENT_ASSERTION_MAX_LIFETIME_MS + clockSkewMs;
}

/**
 * Records the `jti` of an assertion by `clientId` that expires at `expS` once (under a hash, so the key length is
 * bounded); false on a replay.
 */
export function recordJti(recordOnce: RecordOnce, clientId: string, jti: string, expS: number): Promise<boolean> {
  return recordOnce(`jti/${createHash('sha256').update(clientId).update('\0').update(jti).digest('base64url')}`, expS);
}

/** The register's get-or-create of a record that may be forgotten after `expiresAtS`. */
export type ExpiringGetOrCreate = (
  key: string,
  candidate: Uint8Array,
  expiresAtS: number,
) => Promise<Uint8Array | undefined>;

/** A {@link RecordOnce} over a register: propose a fresh random value; the key was new when it was chosen. */
export function recordOnceWith(getOrCreate: ExpiringGetOrCreate): RecordOnce {
  return async (key, expiresAtS) => {
    const candidate = randomBytes(16);
    const chosen = await getOrCreate(key, candidate, expiresAtS);
    return chosen !== undefined && Buffer.from(chosen).equals(candidate);
  };
}

/** Whether `typ` is one a client assertion may carry: `JWT` or `client-authentication+jwt`, any case, `application/` allowed. */
export function isClientAssertionTyp(typ: unknown): boolean {
  if (typeof typ !== 'string') return false;
  const t = typ.toLowerCase();
  return CLIENT_ASSERTION_TYPS.includes(t.startsWith('application/') ? t.slice('application/'.length) : t);
}

function invalid(message: string, cause?: unknown): KeymeshError {
  return new KeymeshError('ERR_INVALID_CLIENT', message, cause === undefined ? undefined : { cause });
}
