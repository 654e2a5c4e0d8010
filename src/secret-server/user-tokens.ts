/**
 * Verification of users' JWTs from trusted IDPs (`trustedIssuers`), for the secret server.
 *
 * A token is accepted only when its `iss` is exactly a registered issuer; it is verified against that issuer's
 * key set (`jwksUri`) with that issuer's algorithms only (asymmetric ones: `alg: none` and an HMAC signed with a
 * public key are refused before any key is touched), `exp` and `nbf` with `clockSkewMs` of tolerance, and an `aud`
 * that the calling resource server may present. Key sets are cached (`IDP_JWKS_MAX_AGE_MS`) and fetched again
 * on an unknown kid at most every `IDP_JWKS_COOLDOWN_MS` (jose's remote key set), through the capped fetcher (no
 * redirects, https except to loopback, bounded size and time); an IDP that cannot be reached fails only the
 * requests that need it. Errors never repeat a library's message or what an IDP answered (that is in `cause`).
 */
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Clock } from '../clock.js';
import { IDP_JWKS_COOLDOWN_MS, IDP_JWKS_MAX_AGE_MS } from '../config/defaults.js';
import { KeymeshError } from '../errors.js';
import { CappedFetcher } from '../net/capped-fetch.js';
import { remoteKeySet, type RemoteJWKSet } from '../net/remote-key-set.js';

/** A trusted IDP as configured. */
export interface TrustedIssuer {
  readonly issuer: string;
  readonly jwksUri: string;
  readonly algorithms: readonly string[];
  readonly audiences?: readonly string[] | undefined;
}

/** A verified user token. */
export interface VerifiedUser {
  readonly issuer: string;
  readonly subject: string;
  readonly claims: JWTPayload;
}

/** Options of {@link UserTokenVerifier}. */
export interface UserTokenVerifierOptions {
  readonly issuers: readonly TrustedIssuer[];
  readonly clock: Clock;
  /** Tolerance of `exp` and `nbf`, in ms. */
  readonly clockSkewMs: number;
  /** Least time between two key-set fetches on an unknown kid, in ms. Default is `IDP_JWKS_COOLDOWN_MS`, 30000. */
  readonly cooldownMs?: number;
  /** How long a key set is kept, in ms. Default is `IDP_JWKS_MAX_AGE_MS`, 600000 (10 min). */
  readonly maxAgeMs?: number;
  /** Timeout of a key-set fetch, in ms, when no `fetcher` is given. Default is `OUTBOUND_FETCH_TIMEOUT_MS`, 5000. */
  readonly timeoutMs?: number;
  /** The fetcher to go through; share one per node. Default is a new {@link CappedFetcher}. */
  readonly fetcher?: CappedFetcher;
}

/** Verifies user tokens of the trusted IDPs against their remote key sets. */
export class UserTokenVerifier {
  readonly #issuers = new Map<string, { config: TrustedIssuer; keys: RemoteJWKSet }>();
  readonly #clock: Clock;
  readonly #clockSkewMs: number;

  constructor(options: UserTokenVerifierOptions) {
    this.#clock = options.clock;
    this.#clockSkewMs = options.clockSkewMs;
    const fetcher =
      options.fetcher ?? new CappedFetcher(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs });
    for (const config of options.issuers) {
      const keys = remoteKeySet(config.jwksUri, {
        fetcher,
        code: 'ERR_IDP_UNAVAILABLE',
        message: `the key set of ${config.issuer} could not be fetched`,
        cooldownMs: options.cooldownMs ?? IDP_JWKS_COOLDOWN_MS,
        maxAgeMs: options.maxAgeMs ?? IDP_JWKS_MAX_AGE_MS,
      });
      this.#issuers.set(config.issuer, { config, keys });
    }
  }

  /**
   * Verifies `jwt` as a user token whose audience is one of `allowedAudiences`.
   * @throws KeymeshError `ERR_UNTRUSTED_ISSUER`, `ERR_INVALID_SUBJECT_TOKEN` or `ERR_IDP_UNAVAILABLE`.
   */
  async verify(jwt: string, allowedAudiences: readonly string[]): Promise<VerifiedUser> {
    let iss: string | undefined;
    let alg: string | undefined;
    let typ: unknown;
    try {
      iss = decodeJwt(jwt).iss;
      ({ alg, typ } = decodeProtectedHeader(jwt));
    } catch {
      throw new KeymeshError('ERR_INVALID_SUBJECT_TOKEN', 'the user token is not a JWT');
    }
    // RFC 8725 §3.11/§3.12: a JWT explicitly typed as something that is never a user's token is refused
    if (typeof typ === 'string' && NOT_A_USER_TOKEN.test(typ))
      throw new KeymeshError('ERR_INVALID_SUBJECT_TOKEN', 'the user token is a JWT of another kind (typ)');
    const entry = iss === undefined ? undefined : this.#issuers.get(iss);
    if (!entry) throw new KeymeshError('ERR_UNTRUSTED_ISSUER', "the user token's issuer is not a trusted issuer");
    const { config, keys } = entry;
    if (alg === undefined || !config.algorithms.includes(alg)) {
      throw new KeymeshError(
        'ERR_INVALID_SUBJECT_TOKEN',
        `the user token's alg is not one its issuer signs with (${config.algorithms.join(', ')})`,
      );
    }
    const audiences = config.audiences
      ? allowedAudiences.filter((a) => config.audiences!.includes(a))
      : [...allowedAudiences];
    if (audiences.length === 0)
      throw new KeymeshError(
        'ERR_INVALID_SUBJECT_TOKEN',
        'no audience the caller may present is accepted from this issuer',
      );
    try {
      const { payload } = await jwtVerify(jwt, keys, {
        issuer: config.issuer,
        audience: audiences,
        algorithms: [...config.algorithms],
        clockTolerance: Math.floor(this.#clockSkewMs / 1000),
        currentDate: new Date(this.#clock.now()),
        requiredClaims: ['sub', 'exp'],
      });
      return { issuer: config.issuer, subject: payload.sub!, claims: payload };
    } catch (err) {
      throw translate(err, config.issuer);
    }
  }
}

/** Explicit types of JWTs that are never a user's token: proofs, assertions, logout and introspection answers, keymesh's own answers. */
const NOT_A_USER_TOKEN =
  /^(application\/)?(dpop\+jwt|client-authentication\+jwt|logout\+jwt|token-introspection\+jwt|secret-answer\+jwt|secevent\+jwt)$/i;

function translate(err: unknown, issuer: string): KeymeshError {
  if (err instanceof KeymeshError) return err;
  // the key set is unusable: a malformed set or not JSON (jose's generic error); fetch failures are KeymeshErrors
  const generic = err instanceof joseErrors.JOSEError && err.code === 'ERR_JOSE_GENERIC';
  if (
    generic ||
    err instanceof joseErrors.JWKSTimeout ||
    err instanceof joseErrors.JWKSInvalid ||
    (err instanceof Error && !(err instanceof joseErrors.JOSEError))
  ) {
    return new KeymeshError(
      'ERR_IDP_UNAVAILABLE',
      `the key set of ${issuer} could not be fetched or is not a key set`,
      { cause: err },
    );
  }
  if (err instanceof joseErrors.JWTExpired)
    return new KeymeshError('ERR_INVALID_SUBJECT_TOKEN', 'the user token has expired');
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return new KeymeshError(
      'ERR_INVALID_SUBJECT_TOKEN',
      ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat'].includes(err.claim)
        ? `the user token's ${err.claim} claim is not acceptable`
        : "the user token's claims are not acceptable",
    );
  if (err instanceof joseErrors.JWKSNoMatchingKey)
    return new KeymeshError('ERR_INVALID_SUBJECT_TOKEN', `no key of ${issuer} matches the user token`);
  if (err instanceof joseErrors.JWSSignatureVerificationFailed)
    return new KeymeshError('ERR_INVALID_SUBJECT_TOKEN', "the user token's signature does not verify");
  return new KeymeshError('ERR_INVALID_SUBJECT_TOKEN', 'the user token was refused', { cause: err });
}
