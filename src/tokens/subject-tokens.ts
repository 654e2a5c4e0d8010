/**
 * What a token exchange (RFC 8693) is made from: the `subject_token`, checked, and what it allows.
 *
 * Two kinds are accepted (DESIGN §9, both on-behalf-of scenarios of seed 003):
 * - **a keymesh access token** of this realm (client-initiated: the client got it, a server passes it on). It
 *   must verify and not be revoked. The caller may act with it if the token names it in `may_act`, or, without
 *   `may_act`, if the token was issued to the caller itself or the caller is registered with `delegation`. What
 *   it allows is bounded by it: its audiences, its scopes, its expiry.
 * - **an assertion of a user by a server registered with `delegation`** (server-initiated: the server
 *   authenticated the user itself): a JWT signed by a key of the server's own `jwksUri`, `iss` = the server's
 *   client id, `sub` = the user, `aud` = this realm, a lifetime of at most 5 minutes and a `jti` recorded once.
 *   What it allows is bounded by the server's registered audiences.
 *
 * Both come as SAML 2.0 assertions too (`subject_token_type` saml2): an assertion this realm issued is read with
 * its token-store record (`saml-provider.ts`) and checked as the access token of the same content would be; one
 * by a delegation server is checked by `saml-subjects.ts` under the user assertion's rules.
 *
 * Either way the new token's `act` names the caller, nested over any `act` the subject token carried, it never
 * outlives the subject token (or the chain that token came from, `chain.ts`), it dies with the revocation of any
 * of them, and a subject token bound to a DPoP key (`cnf.jkt`) is only exchanged with a proof of that key.
 */
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import type { Clock } from '../clock.js';
import { RESERVED_CLAIMS } from '../config/rules.js';
import { CLIENT_ASSERTION_MAX_LIFETIME_MS, IDP_ALGS } from '../config/defaults.js';
import { isKeymeshError, KeymeshError } from '../errors.js';
import type { CappedFetcher } from '../net/capped-fetch.js';
import { remoteKeySet, type RemoteJWKSet } from '../net/remote-key-set.js';
import { outlivesAssertionBound, recordJti, type RecordOnce } from '../secret-server/client-assertions.js';
import type { ClientConfig } from './clients.js';
import type { JwtAccessTokenProvider } from './jwt-provider.js';
import { chainRevoked, extendChain } from './chain.js';
import { whyRefused } from './jose-reasons.js';
import type { Actor, TokenChain } from './provider.js';
import { samlLibrary } from '../saml/lazy.js';
import { looksLikeXml, SAML_MAX_BYTES, SAML_TOKEN_TYPES, type SamlTokenProvider } from './saml-provider.js';
import { delegatedAssertion } from './saml-subjects.js';

/** Subject-token types accepted for a JWT. */
export const JWT_SUBJECT_TOKEN_TYPES: readonly string[] = [
  'urn:ietf:params:oauth:token-type:access_token',
  'urn:ietf:params:oauth:token-type:jwt',
];

/** Claims of a subject token that are never copied into the new token. */
const NOT_COPIED: ReadonlySet<string> = RESERVED_CLAIMS;

/** A checked subject token: who it is about and what a token made from it may carry. */
export interface Subject {
  readonly subject: string;
  /** The actor chain the new token carries: the caller over the subject token's own `act`. */
  readonly actor: Actor | undefined;
  /** Audiences the new token may have. */
  readonly audiences: readonly string[];
  /** Scopes the new token may have; undefined: any. */
  readonly scopes: readonly string[] | undefined;
  /** Latest expiry (seconds); undefined: only the realm's maximum. */
  readonly notAfter: number | undefined;
  /** The chain the new token carries (the subject token and its own chain). */
  readonly chain: TokenChain | undefined;
  /** The DPoP key the subject token is bound to (`cnf.jkt`): the new token needs a proof of it and is bound to it. */
  readonly jkt: string | undefined;
  /** Claims carried over. */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface SubjectTokensOptions {
  readonly jwt: JwtAccessTokenProvider;
  readonly realm: string;
  readonly issuer: string;
  readonly isRevoked: (jti: string) => Promise<boolean>;
  readonly clients: readonly ClientConfig[];
  readonly recordOnce: RecordOnce;
  readonly clock: Clock;
  readonly clockSkewMs: number;
  /** The node's capped fetcher for the delegation clients' key sets. */
  readonly fetcher?: CappedFetcher;
  /** Reads this realm's own SAML assertions; without it a SAML subject token is refused. */
  readonly saml?: SamlTokenProvider;
}

export class SubjectTokens {
  readonly #o: SubjectTokensOptions;
  readonly #delegateKeys = new Map<string, RemoteJWKSet>();

  constructor(options: SubjectTokensOptions) {
    this.#o = options;
    for (const c of options.clients) {
      if (c.delegation && c.jwksUri) {
        this.#delegateKeys.set(
          c.clientId,
          remoteKeySet(c.jwksUri, {
            message: 'the key set of the client could not be fetched',
            ...(options.fetcher ? { fetcher: options.fetcher } : {}),
          }),
        );
      }
    }
  }

  /**
   * Checks `token` for `caller`.
   * @throws KeymeshError `ERR_INVALID_GRANT`, `ERR_UNAUTHORIZED_CLIENT`, `ERR_UNSUPPORTED_TOKEN_TYPE`.
   */
  async check(caller: ClientConfig, token: string, tokenType: string): Promise<Subject> {
    if (SAML_TOKEN_TYPES.has(tokenType) && this.#o.saml) return this.#assertion(caller, token);
    if (!JWT_SUBJECT_TOKEN_TYPES.includes(tokenType))
      throw new KeymeshError(
        'ERR_UNSUPPORTED_TOKEN_TYPE',
        `the subject_token_type is not accepted; use ${[...JWT_SUBJECT_TOKEN_TYPES, ...(this.#o.saml ? SAML_TOKEN_TYPES : [])].join(' or ')}`,
      );
    let iss: string | undefined;
    try {
      iss = decodeJwt(token).iss;
    } catch {
      throw new KeymeshError('ERR_INVALID_GRANT', 'the subject token is not a JWT');
    }
    if (iss === this.#o.issuer) return this.#ownToken(caller, token);
    if (iss === caller.clientId) return this.#delegatedUser(caller, token);
    throw new KeymeshError(
      'ERR_INVALID_GRANT',
      'the subject token is from an untrusted issuer: neither this realm nor the calling client',
    );
  }

  /**
   * A SAML assertion: one this realm issued is checked like an access token of the same content; one by the
   * calling client about a user like its JWT user assertion (`saml-subjects.ts`).
   */
  async #assertion(caller: ClientConfig, token: string): Promise<Subject> {
    if (!looksLikeXml(token)) throw new KeymeshError('ERR_INVALID_GRANT', 'the subject token is not a SAML assertion');
    const { peekAssertion } = await samlLibrary();
    let issuer: string;
    try {
      issuer = peekAssertion(token, SAML_MAX_BYTES).issuer;
    } catch (err) {
      throw new KeymeshError('ERR_INVALID_GRANT', `the subject assertion is refused: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (issuer === caller.clientId && issuer !== this.#o.issuer) {
      const keys = this.#delegateKeys.get(caller.clientId);
      if (!caller.delegation || !keys)
        throw new KeymeshError(
          'ERR_UNAUTHORIZED_CLIENT',
          'the client is not registered with delegation (and a jwksUri), so it may not assert users',
        );
      return delegatedAssertion(caller, keys, token, {
        issuer: this.#o.issuer,
        now: this.#o.clock.now(),
        clockSkewMs: this.#o.clockSkewMs,
        recordOnce: this.#o.recordOnce,
      });
    }
    if (issuer !== this.#o.issuer)
      throw new KeymeshError(
        'ERR_INVALID_GRANT',
        'the subject assertion is from an untrusted issuer: neither this realm nor the calling client',
      );
    let payload: JWTPayload;
    try {
      payload = await this.#o.saml!.read(token, this.#o.realm);
    } catch (err) {
      if (isKeymeshError(err) && err.code !== 'ERR_INVALID_TOKEN' && err.code !== 'ERR_INVALID_XML') throw err;
      throw new KeymeshError('ERR_INVALID_GRANT', `the subject assertion is refused: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return this.#fromOwnPayload(caller, payload);
  }

  async #ownToken(caller: ClientConfig, token: string): Promise<Subject> {
    let payload: JWTPayload;
    try {
      payload = await this.#o.jwt.verify(token, this.#o.realm);
    } catch (err) {
      throw new KeymeshError(
        'ERR_INVALID_GRANT',
        'the subject token does not verify (signature, type, issuer or expiry)',
        { cause: err },
      );
    }
    return this.#fromOwnPayload(caller, payload);
  }

  async #fromOwnPayload(caller: ClientConfig, payload: JWTPayload): Promise<Subject> {
    if (await chainRevoked(payload, this.#o.isRevoked))
      throw new KeymeshError('ERR_INVALID_GRANT', 'the subject token, or a token it was made from, was revoked');
    const cnf = payload['cnf'] as { jkt?: unknown } | undefined;
    if (cnf !== undefined && typeof cnf.jkt !== 'string')
      throw new KeymeshError(
        'ERR_INVALID_GRANT',
        'the subject token is bound to a key in a way this service cannot check',
      );
    const mayAct = payload['may_act'] as { sub?: unknown } | undefined;
    if (mayAct !== undefined) {
      if (mayAct.sub !== caller.clientId)
        throw new KeymeshError(
          'ERR_UNAUTHORIZED_CLIENT',
          "the subject token's may_act does not name the calling client",
        );
    } else if (payload['client_id'] !== caller.clientId && !caller.delegation) {
      throw new KeymeshError(
        'ERR_UNAUTHORIZED_CLIENT',
        'the client may not act with a token issued to another client (no may_act naming it, and not registered with delegation)',
      );
    }
    const ownClient =
      payload['client_id'] === caller.clientId && payload.sub === caller.clientId && payload['act'] === undefined;
    const previous = payload['act'] as Actor | undefined;
    const aud = payload.aud;
    return {
      subject: payload.sub!,
      actor: ownClient ? undefined : { sub: caller.clientId, ...(previous ? { act: previous } : {}) },
      audiences: aud === undefined ? [] : Array.isArray(aud) ? aud : [aud],
      scopes: typeof payload['scope'] === 'string' ? (payload['scope'] as string).split(' ').filter(Boolean) : [],
      notAfter: payload.exp,
      chain: extendChain(payload),
      jkt: cnf?.jkt as string | undefined,
      claims: copied(payload),
    };
  }

  async #delegatedUser(caller: ClientConfig, token: string): Promise<Subject> {
    const keys = this.#delegateKeys.get(caller.clientId);
    if (!caller.delegation || !keys)
      throw new KeymeshError(
        'ERR_UNAUTHORIZED_CLIENT',
        'the client is not registered with delegation (and a jwksUri), so it may not assert users',
      );
    const now = this.#o.clock.now();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        issuer: caller.clientId,
        audience: [this.#o.issuer, `${this.#o.issuer}/token`],
        algorithms: [...IDP_ALGS],
        clockTolerance: Math.floor(this.#o.clockSkewMs / 1000),
        currentDate: new Date(now),
        requiredClaims: ['sub', 'exp', 'jti'],
      }));
    } catch (err) {
      if (isKeymeshError(err)) throw err;
      if (
        err instanceof joseErrors.JWKSTimeout ||
        err instanceof joseErrors.JWKSInvalid ||
        !(err instanceof joseErrors.JOSEError)
      ) {
        throw new KeymeshError('ERR_IDP_UNAVAILABLE', 'the key set of the calling client could not be fetched', {
          cause: err,
        });
      }
      throw new KeymeshError('ERR_INVALID_GRANT', whyRefused(err, 'the user assertion'), { cause: err });
    }
    if (TYPED_NOT_ASSERTION.test(String(protectedTyp(token) ?? '')))
      throw new KeymeshError('ERR_INVALID_GRANT', 'the user assertion is a JWT of another type (typ)');
    if (outlivesAssertionBound(payload, now, this.#o.clockSkewMs)) {
      throw new KeymeshError(
        'ERR_INVALID_GRANT',
        `the user assertion lives longer than ${CLIENT_ASSERTION_MAX_LIFETIME_MS / 1000} s`,
      );
    }
    if (payload.sub === caller.clientId)
      throw new KeymeshError('ERR_INVALID_GRANT', 'a user assertion must name a user, not the client itself');
    if (!(await recordJti(this.#o.recordOnce, caller.clientId, String(payload.jti), payload.exp!)))
      throw new KeymeshError('ERR_INVALID_GRANT', 'the user assertion was used before (replayed jti)');
    return {
      subject: payload.sub!,
      // an `act` inside the server's own assertion is its say-so, not a chain anyone verified: not carried
      actor: { sub: caller.clientId },
      audiences: caller.audiences,
      // bounded by what the server itself was registered for (TokenService narrows to the client's scopes)
      scopes: caller.scopes ?? [],
      notAfter: payload.exp,
      chain: { jti: [], exp: payload.exp! },
      jkt: undefined,
      claims: copied(payload),
    };
  }
}

/** Explicit types (RFC 8725 §3.11) that are never a user assertion: access tokens, DPoP proofs, keymesh answers. */
const TYPED_NOT_ASSERTION =
  /^(application\/)?(at\+jwt|dpop\+jwt|secret-answer\+jwt|client-authentication\+jwt|logout\+jwt|token-introspection\+jwt)$/i;

function protectedTyp(token: string): unknown {
  try {
    return decodeProtectedHeader(token).typ;
  } catch {
    return undefined;
  }
}

function copied(payload: JWTPayload): Record<string, unknown> {
  return Object.fromEntries(Object.entries(payload).filter(([name]) => !NOT_COPIED.has(name)));
}
