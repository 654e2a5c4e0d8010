/**
 * The token SDK's client of a keymesh cluster (DESIGN §9, API.md): what an application or a resource server
 * uses to get tokens (client credentials, RFC 8693 exchange for on-behalf-of), to introspect, revoke and renew
 * them, and to verify the access tokens it is handed without a round trip to the STS.
 *
 * Every remote call tries the cluster's nodes in turn: a node that cannot be reached or answers 5xx is skipped,
 * a 4xx is the cluster's answer (every node serves the same API, so another node would say the same).
 *
 * Verification is local, on `jose`, against a key set of its own: the JWKS is fetched from the first node that
 * serves it, kept in memory and fetched again only when a token names a kid it does not hold, at most once per
 * `jwksCooldownMs` (so a flood of forged kids costs one fetch per cooldown). A fetch that reaches no node keeps
 * the keys already held. This is enough for keymesh because a node publishes a key before it signs with it (the
 * activation gate), so a relying party normally holds a key before the first token it signed arrives.
 * Local verification does not see revocations: call `introspect` where that matters. It always checks the
 * audience: every service of a realm shares its issuer and keys, so `verify` needs this service's `audience` (or an
 * explicit `anyAudience: true`) and refuses a call with neither.
 */
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { checkedNodeUrls } from './node-urls.js';
import { KeymeshError } from '../errors.js';
import { TOKEN_TYPE_ACCESS_TOKEN } from '../tokens/provider.js';
import { GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE } from '../tokens/token-service.js';
import { audiencesToCheck, type AudienceOptions } from './audience.js';

/** How long one call to one node may take, in milliseconds. Default is 10000 (10 seconds). */
export const TOKEN_CLIENT_TIMEOUT_MS = 10_000;
/** Shortest time between two JWKS fetches, in milliseconds. Default is 30000 (30 seconds). */
export const JWKS_COOLDOWN_MS = 30_000;
/** The JOSE `typ` a keymesh access token carries (RFC 9068 §2.1); `verify` refuses any other. */
export const ACCESS_TOKEN_TYP = 'at+jwt';

export interface KeymeshTokenClientOptions {
  /** Base URLs of the cluster's nodes (a realm other than the default: `https://node/realms/R`). */
  readonly nodes: readonly string[];
  /** The realm's issuer; tokens of another issuer do not verify. */
  readonly issuer: string;
  /** This client's registered id and secret (`client_secret_basic`). */
  readonly clientId: string;
  readonly clientSecret: string;
  /** Milliseconds one node may take to answer. Default is 10000 (10 seconds). */
  readonly timeoutMs?: number;
  /** Milliseconds between two JWKS fetches at most. Default is 30000 (30 seconds). */
  readonly jwksCooldownMs?: number;
  /** The `fetch` used for every call. Default is the global `fetch`. */
  readonly fetch?: typeof fetch;
  /** Milliseconds since the epoch, for the cooldown and token expiry. Default is `Date.now`. */
  readonly now?: () => number;
  /** Allow plain http to nodes that are not on loopback (a lab only). Default is false. */
  readonly allowInsecure?: boolean;
}

/** An issued token (RFC 6749 §5.1, RFC 8693 §2.2.1), camel-cased. */
export interface TokenResponse {
  readonly accessToken: string;
  readonly tokenType: string;
  readonly issuedTokenType?: string;
  /** Seconds the token lives, when the server says. */
  readonly expiresIn?: number;
  readonly scope?: string;
}

export interface TokenRequest {
  /** The audience, or several (RFC 8693 §2.1: one `audience` parameter each). Default: the server's choice. */
  readonly audience?: string | readonly string[];
  /** Space-separated scopes. */
  readonly scope?: string;
  readonly requestedTokenType?: string;
  /** Ask for a token that `renew` can renew. Default is false. */
  readonly renewable?: boolean;
}

export interface ExchangeRequest extends TokenRequest {
  readonly subjectToken: string;
  /** Default `urn:ietf:params:oauth:token-type:access_token`. */
  readonly subjectTokenType?: string;
  readonly actorToken?: string;
  /** Default `urn:ietf:params:oauth:token-type:access_token` when `actorToken` is given. */
  readonly actorTokenType?: string;
}

/** RFC 7662 answer. */
export interface IntrospectionResponse {
  readonly active: boolean;
  readonly [claim: string]: unknown;
}

/**
 * What `verify` checks beyond signature, issuer, type and expiry: the audience (required, see
 * {@link AudienceOptions}: `audience`, or `anyAudience: true` explicitly) and the DPoP key binding.
 */
export type VerifyOptions = AudienceOptions & {
  /** RFC 7638 thumbprint of the key of a DPoP proof the caller has already verified (RFC 9449). */
  readonly dpopJkt?: string;
};

/** What one node answered when it refused a call (a 4xx). */
export interface RemoteAnswer {
  readonly node: string;
  readonly status: number;
  readonly error?: string | undefined;
  readonly errorDescription?: string | undefined;
}

/**
 * `ERR_REMOTE` with the node's refusal. The refusal's HTTP status is `remote.status`; `status` stays the one
 * every `ERR_REMOTE` maps to at this process's own HTTP edge (502).
 */
export class KeymeshRemoteError extends KeymeshError {
  readonly remote: RemoteAnswer;

  constructor(remote: RemoteAnswer) {
    super(
      'ERR_REMOTE',
      `${remote.node}: ${remote.status} ${remote.error ?? ''} ${remote.errorDescription ?? ''}`.trim(),
    );
    this.name = 'KeymeshRemoteError';
    this.remote = remote;
  }
}

export class KeymeshTokenClient {
  readonly #o: KeymeshTokenClientOptions;
  readonly #nodes: readonly string[];
  readonly #fetch: typeof fetch;
  readonly #authorization: string;
  #keys: ReturnType<typeof createLocalJWKSet> | undefined;
  #lastJwksFetch = -Infinity;
  #jwksFetching: Promise<boolean> | undefined;

  /** @throws KeymeshError `ERR_INVALID_REQUEST` without nodes. */
  constructor(options: KeymeshTokenClientOptions) {
    if (options.nodes.length === 0)
      throw new KeymeshError('ERR_INVALID_REQUEST', 'the token client needs at least one node');
    this.#o = options;
    this.#nodes = checkedNodeUrls(options.nodes, 'token client node', options.allowInsecure);
    this.#fetch = options.fetch ?? globalThis.fetch;
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before they are joined and base64-encoded.
    const encoded = `${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`;
    this.#authorization = `Basic ${Buffer.from(encoded, 'utf8').toString('base64')}`;
  }

  /** Milliseconds since the epoch, on the client's clock. */
  now(): number {
    return (this.#o.now ?? Date.now)();
  }

  /** A token about this client itself (`client_credentials`). @throws KeymeshError `ERR_REMOTE` */
  requestToken(request: TokenRequest = {}): Promise<TokenResponse> {
    return this.#token({ grant_type: GRANT_CLIENT_CREDENTIALS, ...issueParams(request) });
  }

  /** RFC 8693 token exchange, e.g. a token on behalf of `subjectToken`'s subject. @throws KeymeshError `ERR_REMOTE` */
  exchange(request: ExchangeRequest): Promise<TokenResponse> {
    return this.#token({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: request.subjectToken,
      subject_token_type: request.subjectTokenType ?? TOKEN_TYPE_ACCESS_TOKEN,
      actor_token: request.actorToken,
      actor_token_type:
        request.actorToken === undefined ? undefined : (request.actorTokenType ?? TOKEN_TYPE_ACCESS_TOKEN),
      ...issueParams(request),
    });
  }

  /** RFC 7662 introspection (sees revocations). @throws KeymeshError `ERR_REMOTE` */
  async introspect(token: string): Promise<IntrospectionResponse> {
    const body = await this.#post('/introspect', { token });
    return { ...body, active: body['active'] === true };
  }

  /** RFC 7009 revocation of a token issued to this client. @throws KeymeshError `ERR_REMOTE` */
  async revoke(token: string): Promise<void> {
    await this.#post('/revoke', { token });
  }

  /**
   * The renewed token, with a new expiry (only for tokens issued as renewable). A token renews once: a second
   * renewal of it is taken for theft and ends every token renewed from it. So a renewal is sent to another node only
   * when the first could not be reached at all, never after a 5xx or a timeout (it may have been renewed there).
   * @throws KeymeshError `ERR_REMOTE`
   */
  renew(token: string): Promise<TokenResponse> {
    return this.#token({ token }, '/renew', true);
  }

  /**
   * The payload of a valid keymesh access token: signature by a key of the cluster, `typ: at+jwt` (RFC 9068: an
   * ID token or any other JWT of the issuer is not an access token), issuer, expiry, the audience (`aud` must name
   * `options.audience`, unless `options.anyAudience` is true), and the key binding (`cnf.jkt` must equal
   * `dpopJkt`; other `cnf` is refused).
   * @throws KeymeshError `ERR_INVALID_REQUEST` (before anything is fetched) when `options` gives neither
   *   `audience` nor `anyAudience: true`, or both; `ERR_INVALID_TOKEN` with the reason; `ERR_REMOTE` when no key
   *   set was ever fetched.
   */
  async verify(token: string, options: VerifyOptions): Promise<JWTPayload> {
    const audiences = audiencesToCheck(options, 'verify');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.#getKey, {
        issuer: this.#o.issuer,
        typ: ACCESS_TOKEN_TYP,
        currentDate: new Date(this.now()),
        requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
        ...(audiences === undefined ? {} : { audience: [...audiences] }),
      }));
    } catch (err) {
      if (err instanceof KeymeshError) throw err;
      throw new KeymeshError('ERR_INVALID_TOKEN', `the token does not verify: ${(err as Error).message}`, {
        cause: err,
      });
    }
    // A token bound to a key (`cnf`) is refused unless the caller proved that key: a DPoP key (`jkt`) is the only
    // binding this client can check, so any other confirmation method is refused outright.
    const cnf = payload['cnf'] as { jkt?: unknown } | null | undefined;
    if (cnf !== undefined && (options.dpopJkt === undefined || cnf?.jkt !== options.dpopJkt)) {
      throw new KeymeshError(
        'ERR_INVALID_TOKEN',
        'the token is DPoP-bound (cnf) and was not presented with a proof of its key',
      );
    }
    return payload;
  }

  readonly #getKey: JWTVerifyGetKey = async (header, token) => {
    if (this.#keys) {
      try {
        return await this.#keys(header, token);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
      }
    }
    const fetched = await this.#refreshKeys();
    if (!this.#keys) throw new KeymeshError('ERR_REMOTE', 'no node served the key set (/.well-known/jwks.json)');
    if (!fetched)
      throw new KeymeshError(
        'ERR_INVALID_TOKEN',
        `the token does not verify: no key ${header.kid ?? ''} in the key set`,
      );
    return this.#keys(header, token);
  };

  /** Fetches the key set unless one was fetched within the cooldown; concurrent callers share one fetch. */
  #refreshKeys(): Promise<boolean> {
    if (this.#jwksFetching) return this.#jwksFetching;
    if (this.now() - this.#lastJwksFetch < (this.#o.jwksCooldownMs ?? JWKS_COOLDOWN_MS)) return Promise.resolve(false);
    this.#lastJwksFetch = this.now();
    this.#jwksFetching = this.#fetchJwks().finally(() => (this.#jwksFetching = undefined));
    return this.#jwksFetching;
  }

  async #fetchJwks(): Promise<boolean> {
    for (const node of this.#nodes) {
      try {
        const res = await this.#fetch(`${node}/.well-known/jwks.json`, {
          signal: this.#signal(),
          redirect: 'error',
          headers: { accept: 'application/json' },
        });
        const jwks = res.ok ? ((await res.json()) as JSONWebKeySet | null) : undefined;
        if (!Array.isArray(jwks?.keys)) continue;
        this.#keys = createLocalJWKSet(jwks);
        return true;
      } catch {
        // unreachable or not JSON: the next node
      }
    }
    return false;
  }

  async #token(form: Form, path = '/token', once = false): Promise<TokenResponse> {
    const body = await this.#post(path, form, once);
    if (typeof body['access_token'] !== 'string')
      throw new KeymeshError('ERR_REMOTE', `${path} answered without an access_token`);
    const str = (name: string) => (typeof body[name] === 'string' ? (body[name] as string) : undefined);
    const expiresIn = typeof body['expires_in'] === 'number' ? body['expires_in'] : undefined;
    return {
      accessToken: body['access_token'],
      tokenType: str('token_type') ?? 'Bearer',
      issuedTokenType: str('issued_token_type'),
      expiresIn,
      scope: str('scope'),
    };
  }

  /**
   * A client-authenticated form POST on the first node that answers; a 4xx is final. With `once`, only a node that
   * refused the connection is skipped: a 5xx or a lost answer is final too, since the request may have taken effect.
   */
  async #post(path: string, form: Form, once = false): Promise<Record<string, unknown>> {
    const body = new URLSearchParams();
    for (const [name, value] of Object.entries(form)) for (const v of [value ?? []].flat()) body.append(name, v);
    const reasons: string[] = [];
    for (const node of this.#nodes) {
      let res: Response, json: Record<string, unknown> | undefined;
      try {
        res = await this.#fetch(`${node}${path}`, {
          redirect: 'error',
          method: 'POST',
          body,
          signal: this.#signal(),
          headers: {
            authorization: this.#authorization,
            'content-type': 'application/x-www-form-urlencoded',
            accept: 'application/json',
          },
        });
        json = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
      } catch (err) {
        reasons.push(`${node}: ${(err as Error).message}`);
        if (once && !neverReached(err)) break;
        continue;
      }
      if (once && res.status >= 500)
        throw new KeymeshRemoteError({
          node,
          status: res.status,
          error: typeof json?.['error'] === 'string' ? (json['error'] as string) : undefined,
          errorDescription: undefined,
        });
      if (res.status >= 500 || (res.ok && (json === null || typeof json !== 'object'))) {
        reasons.push(`${node}: ${res.status} ${res.ok ? 'not JSON' : String(json?.['error'] ?? '')}`.trim());
        continue;
      }
      if (res.ok) return json!;
      const [error, errorDescription] = [json?.['error'], json?.['error_description']].map((v) =>
        typeof v === 'string' ? v : undefined,
      );
      throw new KeymeshRemoteError({ node, status: res.status, error, errorDescription });
    }
    throw new KeymeshError('ERR_REMOTE', `no node answered ${path}: ${reasons.join('; ')}`);
  }

  #signal(): AbortSignal {
    return AbortSignal.timeout(this.#o.timeoutMs ?? TOKEN_CLIENT_TIMEOUT_MS);
  }
}

/** Whether a failed fetch never reached the server (the connection was refused or the host is unknown). */
function neverReached(err: unknown): boolean {
  const code = ((err as { cause?: { code?: unknown } }).cause?.code ?? '') as string;
  return ['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code);
}

/** Form parameters; an array is sent as the parameter repeated, `undefined` not at all. */
type Form = Record<string, string | readonly string[] | undefined>;

function issueParams(request: TokenRequest): Form {
  const { audience, scope, requestedTokenType, renewable } = request;
  return {
    audience,
    scope,
    requested_token_type: requestedTokenType,
    renewable: renewable === undefined ? undefined : String(renewable),
  };
}

/** `application/x-www-form-urlencoded` of one value (spaces as `+`), as RFC 6749 Appendix B asks. */
function formEncode(value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2);
}
