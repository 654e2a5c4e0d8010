/**
 * The interceptors of seed 003, for HTTP: on the way in, `keymeshAuth` turns a request's bearer token into the
 * current {@link KeymeshPrincipal}; on the way out, `keymeshFetch` attaches a token to calls to other services,
 * either the caller's own (client-initiated propagation: the token the client got from the STS travels on) or
 * one exchanged on the caller's behalf for the next service's audience (on-behalf-of, RFC 8693), or, outside any
 * request, the service's own `client_credentials` token.
 *
 * `keymeshAuth` speaks the smallest common shape of Node's `http` server, Express and Fastify: a request with
 * `headers`, a response that is either Node-like (`statusCode`, `setHeader`, `end`) or Fastify-like (`code`,
 * `header`, `send`), and a `next` callback. It returns nothing (not a promise), so Fastify treats it as a
 * callback-style `preHandler` and `next` is called exactly once or the request is answered. It is safe by
 * default: it cannot be built without this service's `audience` (or an explicit `anyAudience: true`).
 *
 * A DPoP request is taken in this order: the proof is checked (signature, method, URL, `iat`, `ath`), then the
 * access token is verified (signature, audience, `cnf.jkt` = the proof's key), and only then is the proof recorded
 * against replay, so proofs sent with tokens that do not verify never fill the replay cache.
 */
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { Clock } from '../clock.js';
import { isKeymeshError, KeymeshError } from '../errors.js';
import { DpopError, DpopNonces, DpopVerifier, type CheckedDpopProof } from '../tokens/dpop.js';
import { audiencesToCheck, type AudienceOptions } from './audience.js';
import { DpopReplayCache } from './dpop-replay-cache.js';
import { currentPrincipal, KeymeshPrincipal, runAs } from './principal.js';
import type { KeymeshTokenClient, TokenResponse } from './token-client.js';

declare module 'http' {
  interface IncomingMessage {
    /** The caller, set by `keymeshAuth` once the request's token verified. */
    keymesh?: KeymeshPrincipal;
  }
}

/** How long before its expiry a cached token is replaced, in milliseconds (at most half its lifetime). Default is 30000. */
export const TOKEN_REFRESH_MARGIN_MS = 30_000;
/** Most tokens one `keymeshFetch` keeps (one per caller for on-behalf-of). Default is 1000. */
export const TOKEN_CACHE_MAX_ENTRIES = 1000;

/**
 * `keymeshAuth`'s options. The audience is required: `audience` (this service's identifier; the token's `aud`
 * must name it, or one of them), or `anyAudience: true` to accept a token for any service of the realm on purpose.
 */
export type KeymeshAuthOptions = AudienceOptions & {
  /** When false, a request without `Authorization` goes on without a principal; a bad token is still refused. Default is true. */
  readonly required?: boolean;
  /**
   * Accept DPoP-bound tokens (RFC 9449 `Authorization: DPoP <token>` with a `DPoP` proof): `baseUrl` is this
   * service's scheme and host as its callers address it (the proof's `htu`). Without it, bound tokens are refused.
   * `maxReplayEntries` bounds the proofs remembered against replay; when that many are within their `iat`
   * window, further DPoP requests are answered 503 until some expire. Default is 100000
   * (`DPOP_REPLAY_MAX_ENTRIES`). Proof times are checked on the token client's clock (`now`).
   */
  readonly dpop?: { readonly baseUrl: string; readonly maxReplayEntries?: number };
};

/**
 * The request: Node's `IncomingMessage` (whose `keymesh` this module declares), Express's or Fastify's request.
 * For a typed `request.keymesh` in Fastify: `declare module 'fastify' { interface FastifyRequest { keymesh?: KeymeshPrincipal } }`.
 */
export interface AuthRequest {
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  keymesh?: KeymeshPrincipal;
}

/** Node's `ServerResponse` and Express's response. */
export interface NodeStyleResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

/** Fastify's reply. */
export interface FastifyStyleReply {
  code(status: number): unknown;
  header(name: string, value: string): unknown;
  send(payload?: unknown): unknown;
}

/** `next` is called without arguments, exactly once, or not at all when the request was answered. */
export type KeymeshMiddleware = (
  req: AuthRequest,
  res: NodeStyleResponse | FastifyStyleReply,
  next: () => void,
) => void;

/**
 * A middleware that verifies `Authorization: Bearer <token>` through `client` (audience included), sets
 * `req.keymesh` and runs `next` inside `runAs(principal, …)`. A missing or bad token is answered 401 with
 * `WWW-Authenticate: Bearer error="invalid_token"` and `{error, error_description}`; keys that cannot be fetched at
 * all, or a full DPoP replay cache, 503 `temporarily_unavailable`.
 * A DPoP-bound token is accepted only as `Authorization: DPoP` with a valid, unused proof of its key (`options.dpop`).
 * @throws KeymeshError `ERR_INVALID_REQUEST` at once when `options` gives neither `audience` nor
 *   `anyAudience: true` (or both), or `dpop.baseUrl` is not an absolute http(s) URL, or `dpop.maxReplayEntries` is
 *   not a positive integer.
 */
export function keymeshAuth(client: KeymeshTokenClient, options: KeymeshAuthOptions): KeymeshMiddleware {
  const audiences = audiencesToCheck(options, 'keymeshAuth');
  const audience = audiences === undefined ? { anyAudience: true as const } : { audience: audiences };
  const dpopBase = options.dpop === undefined ? undefined : dpopBaseUrl(options.dpop.baseUrl);
  const proofs = options.dpop ? dpopVerifier({ now: () => client.now() }, options.dpop.maxReplayEntries) : undefined;
  return (req, res, next) => {
    const header = req.headers['authorization'];
    if (header === undefined && options.required === false) return next();
    const m = typeof header === 'string' ? /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header) : null;
    if (!m)
      return refuse(
        res,
        401,
        'invalid_token',
        header === undefined ? 'a bearer token is required' : 'the Authorization header holds no bearer or DPoP token',
      );
    const token = m[2]!;
    const dpop = m[1]!.toLowerCase() === 'dpop';
    if (dpop && !proofs) return refuse(res, 401, 'invalid_token', 'this service does not accept DPoP-bound tokens');
    const authenticate = async (): Promise<KeymeshPrincipal> => {
      if (!dpop) return KeymeshPrincipal.fromPayload(token, await client.verify(token, audience));
      const proof = await checkProof(proofs!, req, `${dpopBase}${(req.url ?? '/').split('?')[0]}`, token);
      const payload = await client.verify(token, { ...audience, dpopJkt: proof.jkt });
      // the DPoP scheme is for tokens bound to the proof's key (RFC 9449 §7.1): an unbound token is refused too
      if ((payload['cnf'] as { jkt?: unknown } | undefined)?.jkt !== proof.jkt) {
        throw new KeymeshError(
          'ERR_INVALID_TOKEN',
          "a token presented with the DPoP scheme must be bound (cnf.jkt) to the proof's key",
        );
      }
      const principal = KeymeshPrincipal.fromPayload(token, payload);
      // last: only a proof of a token that verified and is bound to its key takes room in the replay cache
      await recordProof(proof);
      return principal;
    };
    authenticate().then(
      (principal) => {
        req.keymesh = principal;
        runAs(principal, () => next());
      },
      (err: unknown) => {
        if (isKeymeshError(err, 'ERR_INVALID_TOKEN')) refuse(res, 401, 'invalid_token', err.message);
        else if (isKeymeshError(err, 'ERR_UNAVAILABLE')) refuse(res, 503, 'temporarily_unavailable', err.message);
        else refuse(res, 503, 'temporarily_unavailable', 'the keys to verify the token with are unavailable');
      },
    );
  };
}

/** The proof in the request's `DPoP` header, checked for this request and token but not yet recorded. */
async function checkProof(
  proofs: DpopVerifier,
  req: AuthRequest,
  url: string,
  token: string,
): Promise<CheckedDpopProof> {
  const proof = req.headers['dpop'];
  if (typeof proof !== 'string')
    throw new KeymeshError('ERR_INVALID_TOKEN', 'a DPoP-bound token needs one DPoP proof header');
  try {
    return await proofs.check(proof, { method: req.method ?? 'GET', url, accessToken: token });
  } catch (err) {
    throw new KeymeshError('ERR_INVALID_TOKEN', `the DPoP proof is refused: ${(err as Error).message}`, { cause: err });
  }
}

/** Records the proof against replay: a replay is `ERR_INVALID_TOKEN`, a full cache `ERR_UNAVAILABLE` as thrown. */
async function recordProof(proof: CheckedDpopProof): Promise<void> {
  try {
    await proof.record();
  } catch (err) {
    if (err instanceof DpopError)
      throw new KeymeshError('ERR_INVALID_TOKEN', `the DPoP proof is refused: ${err.message}`, { cause: err });
    throw err;
  }
}

/** `baseUrl` without a trailing slash. @throws KeymeshError `ERR_INVALID_REQUEST` unless an absolute http(s) URL. */
function dpopBaseUrl(baseUrl: string): string {
  const url = typeof baseUrl === 'string' && URL.canParse(baseUrl) ? new URL(baseUrl) : undefined;
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    throw new KeymeshError(
      'ERR_INVALID_REQUEST',
      'keymeshAuth: dpop.baseUrl must be an absolute http(s) URL (this service as its callers address it)',
    );
  }
  return baseUrl.replace(/\/+$/, '');
}

/**
 * DPoP proofs at a resource server: no server nonces (this service issued none; a proof carrying one is refused)
 * and replays remembered in this process, bounded, until the proof could no longer pass its `iat` check.
 */
function dpopVerifier(clock: Clock, maxReplayEntries: number | undefined): DpopVerifier {
  const replays = new DpopReplayCache({
    clock,
    ...(maxReplayEntries === undefined ? {} : { maxEntries: maxReplayEntries }),
  });
  return new DpopVerifier({
    clock,
    recordOnce: replays.recordOnce,
    nonces: new DpopNonces({ clock, secretKeys: () => [] }),
  });
}

function refuse(res: NodeStyleResponse | FastifyStyleReply, status: number, error: string, description: string): void {
  // RFC 6750 §3: error_description is printable ASCII without `"` and `\`.
  const safe = description.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '').slice(0, 200);
  const body = JSON.stringify({ error, error_description: safe });
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (status === 401) headers['www-authenticate'] = `Bearer error="${error}", error_description="${safe}"`;
  if ('code' in res && typeof res.code === 'function' && 'send' in res) {
    res.code(status);
    for (const [name, value] of Object.entries(headers)) res.header(name, value);
    res.send(body);
    return;
  }
  const node = res as NodeStyleResponse;
  node.statusCode = status;
  for (const [name, value] of Object.entries(headers)) node.setHeader(name, value);
  node.end(body);
}

export interface KeymeshFetchOptions {
  /** The audience of the service called (the token's `aud` for exchanged and client-credentials tokens). */
  readonly audience: string;
  /** Exchange the current principal's token for one for `audience` instead of passing it on. Default is false. */
  readonly onBehalfOf?: boolean;
  /** Space-separated scopes to ask for in exchanged and client-credentials tokens. */
  readonly scope?: string;
  /** The `fetch` wrapped. Default is the global `fetch`. */
  readonly fetch?: typeof fetch;
  /**
   * The origins (`https://host:port`) of the service called, the only places a token is ever sent: a request to
   * any other origin is refused before a token is attached, so a service that fetches a URL it was handed never
   * hands its callers' tokens out. Required.
   */
  readonly origins: readonly string[];
}

/**
 * A `fetch` that adds `Authorization: Bearer …` (unless the call sets `Authorization` itself): inside `runAs`, the
 * current principal's token as is, or with `onBehalfOf` a token exchanged for it (`subject_token` = its token),
 * kept until shortly before expiry; outside, this client's `client_credentials` token for `audience`, likewise
 * kept. Throws what the token client throws (`ERR_REMOTE`) when no token can be had.
 */
export function keymeshFetch(client: KeymeshTokenClient, options: KeymeshFetchOptions): typeof fetch {
  const origins = new Set((options.origins ?? []).map((o) => originOf(o)));
  if (origins.size === 0 || origins.has(undefined))
    throw new KeymeshError(
      'ERR_INVALID_REQUEST',
      'keymeshFetch needs origins: the http(s) origins of the service called, where tokens may be sent',
    );
  const inner = options.fetch ?? globalThis.fetch;
  const cache = new TokenCache(() => client.now());
  const scope = options.scope === undefined ? {} : { scope: options.scope };
  const tokenFor = (): Promise<string> => {
    const principal = currentPrincipal();
    if (principal && !options.onBehalfOf) return Promise.resolve(principal.token);
    if (principal) {
      const key = createHash('sha256').update(principal.token).digest('base64url');
      return cache.get(key, () =>
        client.exchange({ subjectToken: principal.token, audience: options.audience, ...scope }),
      );
    }
    return cache.get('client_credentials', () => client.requestToken({ audience: options.audience, ...scope }));
  };
  return async (input, init) => {
    const target = originOf(input instanceof Request ? input.url : input.toString());
    if (!origins.has(target))
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        `keymeshFetch sends tokens only to ${[...origins].join(', ')}, not to ${target ?? 'a non-http URL'}`,
      );
    const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
    if (!headers.has('authorization')) headers.set('authorization', `Bearer ${await tokenFor()}`);
    return inner(input, { ...init, headers });
  };
}

/** The origin of an absolute http(s) URL, or undefined. */
function originOf(url: string): string | undefined {
  if (!URL.canParse(url)) return undefined;
  const parsed = new URL(url);
  return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.origin : undefined;
}

/** Issued tokens by key, each until shortly before it expires; concurrent askers share one request. */
class TokenCache {
  readonly #now: () => number;
  readonly #entries = new Map<string, { refreshAt: number; token: Promise<string> }>();

  constructor(now: () => number) {
    this.#now = now;
  }

  get(key: string, issue: () => Promise<TokenResponse>): Promise<string> {
    const now = this.#now();
    const hit = this.#entries.get(key);
    if (hit && hit.refreshAt > now) return hit.token;
    this.#entries.delete(key);
    this.#prune(now);
    const entry = { refreshAt: Infinity, token: Promise.resolve('') };
    entry.token = issue().then((issued) => {
      entry.refreshAt = refreshAt(now, issued);
      return issued.accessToken;
    });
    entry.token.catch(() => this.#entries.get(key) === entry && this.#entries.delete(key));
    this.#entries.set(key, entry);
    return entry.token;
  }

  #prune(now: number): void {
    if (this.#entries.size < TOKEN_CACHE_MAX_ENTRIES) return;
    for (const [key, entry] of this.#entries) if (entry.refreshAt <= now) this.#entries.delete(key);
    for (const key of this.#entries.keys()) {
      if (this.#entries.size < TOKEN_CACHE_MAX_ENTRIES) break;
      this.#entries.delete(key);
    }
  }
}

/** When to replace a token issued at `now`: a margin before it expires (`expires_in`, else its `exp`). */
function refreshAt(now: number, issued: TokenResponse): number {
  let lifetimeMs = issued.expiresIn === undefined ? undefined : issued.expiresIn * 1000;
  if (lifetimeMs === undefined) {
    try {
      const { exp } = decodeJwt(issued.accessToken);
      if (exp !== undefined) lifetimeMs = exp * 1000 - now;
    } catch {
      // not a JWT: not kept
    }
  }
  if (lifetimeMs === undefined || lifetimeMs <= 0) return now;
  return now + lifetimeMs - Math.min(TOKEN_REFRESH_MARGIN_MS, lifetimeMs / 2);
}
