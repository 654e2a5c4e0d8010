/**
 * Authentication of registered resource servers (`resourceServers`) by RFC 7523 client assertions.
 *
 * A caller sends `client_assertion_type` = jwt-bearer and `client_assertion`: a JWT whose `iss` and `sub` are its
 * `clientId`, whose `aud` is one of this cluster's own identifiers (its issuer or the endpoint URL), with `exp`,
 * `jti` and a lifetime of at most `CLIENT_ASSERTION_MAX_LIFETIME_MS`, signed by a signing key from the resource
 * server's registered `jwksUri` (its POP). Each `jti` is recorded once through the replicated register, so a
 * replayed assertion is refused on every node, not only the one that saw it first. Every failure is
 * `ERR_INVALID_CLIENT` (401 `invalid_client`), except an unreachable key set (`ERR_IDP_UNAVAILABLE`, 503).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createRemoteJWKSet, decodeJwt, errors as joseErrors, jwtVerify } from 'jose';
import type { Clock } from '../clock.js';
import { CLIENT_ASSERTION_MAX_LIFETIME_MS, CLIENT_ASSERTION_TYPE, IDP_ALGS, IDP_JWKS_COOLDOWN_MS, IDP_JWKS_MAX_AGE_MS, IDP_JWKS_TIMEOUT_MS } from '../config/defaults.js';
import { KeymeshError } from '../errors.js';

/** A registered resource server as configured. */
export interface ResourceServer {
  readonly audience: string;
  readonly clientId: string;
  readonly jwksUri: string;
  readonly userTokenAudiences: readonly string[];
}

/**
 * Records `key` once: resolves true the first time any node records it, false ever after. Backed by the
 * register's get-or-create.
 */
export type RecordOnce = (key: string) => Promise<boolean>;

export class ClientAssertionVerifier {
  readonly #clients = new Map<string, { server: ResourceServer; keys: ReturnType<typeof createRemoteJWKSet> }>();
  readonly #byAudience = new Map<string, ResourceServer>();
  readonly #acceptedAudiences: readonly string[];
  readonly #clock: Clock;
  readonly #clockSkewMs: number;
  readonly #recordOnce: RecordOnce;
  readonly #label: string;

  /** `label` names the callers in errors: "resource server" (default) or, for the token service, "client". */
  constructor(options: {
    resourceServers: readonly ResourceServer[]; acceptedAudiences: readonly string[]; clock: Clock; clockSkewMs: number; recordOnce: RecordOnce; cooldownMs?: number;
    label?: string;
  }) {
    this.#label = options.label ?? 'resource server';
    this.#acceptedAudiences = options.acceptedAudiences;
    this.#clock = options.clock;
    this.#clockSkewMs = options.clockSkewMs;
    this.#recordOnce = options.recordOnce;
    for (const server of options.resourceServers) {
      const keys = createRemoteJWKSet(new URL(server.jwksUri), { cooldownDuration: options.cooldownMs ?? IDP_JWKS_COOLDOWN_MS, cacheMaxAge: IDP_JWKS_MAX_AGE_MS, timeoutDuration: IDP_JWKS_TIMEOUT_MS });
      this.#clients.set(server.clientId, { server, keys });
      this.#byAudience.set(server.audience, server);
    }
  }

  /** The registered resource server of `audience`. @throws KeymeshError `ERR_UNKNOWN_AUDIENCE` */
  resourceServer(audience: string): ResourceServer {
    const server = this.#byAudience.get(audience);
    if (!server) throw new KeymeshError('ERR_UNKNOWN_AUDIENCE', `${JSON.stringify(audience).slice(0, 200)} is not a registered resource server`);
    return server;
  }

  /**
   * The resource server that signed `assertion`.
   * @throws KeymeshError `ERR_INVALID_CLIENT`, or `ERR_IDP_UNAVAILABLE` when its key set cannot be fetched.
   */
  async verify(assertionType: string | undefined, assertion: string | undefined): Promise<ResourceServer> {
    if (assertionType !== CLIENT_ASSERTION_TYPE || !assertion) throw invalid(`client authentication needs client_assertion_type ${CLIENT_ASSERTION_TYPE} and a client_assertion`);
    let iss: string | undefined;
    try {
      iss = decodeJwt(assertion).iss;
    } catch {
      throw invalid('the client assertion is not a JWT');
    }
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
      const generic = err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC';
      if (generic || err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid || !(err instanceof joseErrors.JOSEError)) {
        throw new KeymeshError('ERR_IDP_UNAVAILABLE', `the key set of ${this.#label} ${client.server.clientId} could not be fetched: ${(err as Error).message}`, { cause: err });
      }
      throw invalid(err instanceof joseErrors.JWTExpired ? 'the client assertion has expired' : `the client assertion does not verify: ${(err as Error).message}`);
    }
    if (outlivesAssertionBound(payload, now, this.#clockSkewMs)) throw invalid(`the client assertion lives longer than ${CLIENT_ASSERTION_MAX_LIFETIME_MS / 1000} s`);
    if (typeof payload.jti !== 'string' || payload.jti.length === 0 || payload.jti.length > 128) throw invalid('the client assertion needs a jti of 1–128 characters');
    if (!(await recordJti(this.#recordOnce, client.server.clientId, payload.jti))) throw invalid('the client assertion was used before (replayed jti)');
    return client.server;
  }
}

/** Whether an assertion lives longer than `CLIENT_ASSERTION_MAX_LIFETIME_MS` (counted from its `iat`, or now if earlier). */
export function outlivesAssertionBound(payload: { exp?: number; iat?: number }, nowMs: number, clockSkewMs: number): boolean {
  const nowS = Math.floor(nowMs / 1000);
  return (payload.exp! - Math.min(payload.iat ?? nowS, nowS)) * 1000 > CLIENT_ASSERTION_MAX_LIFETIME_MS + clockSkewMs;
}

/** Records the `jti` of an assertion by `clientId` once (under a hash, so the key length is bounded); false on a replay. */
export function recordJti(recordOnce: RecordOnce, clientId: string, jti: string): Promise<boolean> {
  return recordOnce(`jti/${createHash('sha256').update(clientId).update('\0').update(jti).digest('base64url')}`);
}

/** A {@link RecordOnce} over a register: propose a fresh random value; the key was new when it was chosen. */
export function recordOnceWith(getOrCreate: (key: string, candidate: Uint8Array) => Promise<Uint8Array | undefined>): RecordOnce {
  return async (key) => {
    const candidate = randomBytes(16);
    const chosen = await getOrCreate(key, candidate);
    return chosen !== undefined && Buffer.from(chosen).equals(candidate);
  };
}

function invalid(message: string): KeymeshError {
  return new KeymeshError('ERR_INVALID_CLIENT', message);
}
