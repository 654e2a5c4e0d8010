/**
 * The client a datacenter-1 backend uses to get a user's secret from another cluster's secret server (DESIGN §2):
 *
 *   getUserSecret(userJwt):
 *     1. an RFC 7523 client assertion from its own cluster (`POST /v1/client-assertion`, `backend` scope);
 *     2. `POST /secret-server/token-exchange` on the secret server, trying its nodes in turn until one answers
 *        (a node that cannot be reached or answers 5xx is skipped; a 4xx is the answer);
 *     3. the returned JWT verified against the secret server's JWKS: its explicit type (`typ: secret-answer+jwt`,
 *        so no other JWT of that realm passes for an answer), issuer, audience, expiry, and that it is about the
 *        user asked for (`sub`, and `sub_id`'s issuer and subject when the answer carries one, equal to the user
 *        token's), so an answer for another user, replayed or mixed up, is never decrypted;
 *     4. the JWE for this backend's audience decrypted by its own cluster (`POST /v1/decrypt`).
 *
 * A user whose secret an operator erased (GDPR Art. 17) gets `ERR_SECRET_ERASED`: the secret server answered 410
 * `secret_erased`, and will for ever; data encrypted under that secret cannot be decrypted any more.
 *
 * The secret never crosses the network in the clear: it travels encrypted to this cluster's POP key.
 */
import { decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { remoteKeySet, type RemoteJWKSet } from '../net/remote-key-set.js';
import { checkedNodeUrls } from './node-urls.js';
import { CLIENT_ASSERTION_TYPE } from '../config/defaults.js';
import { ERROR_CODES, KeymeshError } from '../errors.js';
import { SECRET_ANSWER_TYP } from '../secret-server/secret-server.js';

export interface SecretClientOptions {
  /** Base URLs of nodes of this backend's own cluster (datacenter 1). */
  readonly ownCluster: readonly string[];
  /** A `backend`-scope operator token of the own cluster. */
  readonly backendToken: string;
  /** Base URLs of the secret server's nodes (datacenter 2). */
  readonly secretServer: readonly string[];
  /** The secret server's issuer (its realm issuer) and the audience it registered this backend under. */
  readonly secretServerIssuer: string;
  readonly audience: string;
  /** The user-token type sent; default `urn:ietf:params:oauth:token-type:jwt`. */
  readonly subjectTokenType?: string;
  readonly timeoutMs?: number;
  /** Allow plain http to nodes that are not on loopback (a lab only). Default is false. */
  readonly allowInsecure?: boolean;
}

export class SecretClient {
  readonly #o: SecretClientOptions;
  readonly #jwks: RemoteJWKSet[];

  constructor(options: SecretClientOptions) {
    if (options.ownCluster.length === 0 || options.secretServer.length === 0)
      throw new KeymeshError('ERR_INVALID_REQUEST', 'the client needs at least one node of each cluster');
    checkedNodeUrls([...options.ownCluster, ...options.secretServer], 'secret client node', options.allowInsecure);
    this.#o = options;
    // the secret server's key set through the capped fetcher: no redirects, a size bound, a timeout
    this.#jwks = options.secretServer.map((base) =>
      remoteKeySet(`${trim(base)}/.well-known/jwks.json`, {
        code: 'ERR_REMOTE',
        message: "the secret server's key set could not be fetched",
      }),
    );
  }

  /**
   * The user's secret (32 bytes).
   * @throws KeymeshError `ERR_INVALID_REQUEST` (before any call) when `userJwt` is not a JWT with a `sub`;
   *   `ERR_REMOTE` with the status and description of a refusal, when no node answers, or when the answer does
   *   not verify (signature, `typ`, issuer, audience, expiry) or is about another user than `userJwt`'s;
   *   `ERR_SECRET_ERASED` when the user's secret was erased (no secret will ever be returned for this user again).
   */
  async getUserSecret(userJwt: string): Promise<Uint8Array> {
    const user = userOf(userJwt);
    const { assertion } = await this.#own<{ assertion: string }>('/v1/client-assertion', {
      audience: this.#o.secretServerIssuer,
    });
    const { token, node } = await this.#exchange(userJwt, assertion);
    let payload;
    try {
      payload = await this.#verified(token, node);
    } catch (err) {
      throw new KeymeshError('ERR_REMOTE', `the secret server's answer does not verify: ${(err as Error).message}`, {
        cause: err,
      });
    }
    checkAboutUser(payload, user);
    const jwe = (payload['secret'] as Record<string, unknown> | undefined)?.[this.#o.audience];
    if (typeof jwe !== 'string')
      throw new KeymeshError('ERR_REMOTE', `the secret server's answer holds no secret for ${this.#o.audience}`);
    const { plaintext } = await this.#own<{ plaintext: string }>('/v1/decrypt', { jwe });
    return new Uint8Array(Buffer.from(plaintext, 'base64url'));
  }

  /**
   * The answer's claims, verified with node `node`'s key set. An answer signed by a key the cached set lacks makes
   * the set be fetched again once, whatever jose's cooldown: a secret server adopts another node's key when several
   * made one for the same slot (DESIGN §6), without publishing it ahead. A server naming a key it never publishes
   * costs one fetch of its own key set per call, no more.
   */
  async #verified(token: string, node: number): Promise<JWTPayload> {
    const keys = this.#jwks[node]!;
    const verify = () =>
      jwtVerify(token, keys, {
        issuer: this.#o.secretServerIssuer,
        audience: this.#o.audience,
        typ: SECRET_ANSWER_TYP,
        requiredClaims: ['sub', 'exp'],
      });
    try {
      return (await verify()).payload;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ERR_JWKS_NO_MATCHING_KEY') throw err;
      await keys.reload();
      return (await verify()).payload;
    }
  }

  async #exchange(userJwt: string, assertion: string): Promise<{ token: string; node: number }> {
    const form = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: userJwt,
      subject_token_type: this.#o.subjectTokenType ?? 'urn:ietf:params:oauth:token-type:jwt',
      audience: this.#o.audience,
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: assertion,
    });
    const reasons: string[] = [];
    for (let node = 0; node < this.#o.secretServer.length; node++) {
      const base = trim(this.#o.secretServer[node]!);
      let res: Response;
      try {
        // never redirected: the user's token and a single-use assertion go to the node named, or nowhere
        res = await fetch(`${base}/secret-server/token-exchange`, {
          method: 'POST',
          body: form,
          redirect: 'error',
          signal: AbortSignal.timeout(this.#o.timeoutMs ?? 10_000),
        });
      } catch (err) {
        reasons.push(`${base}: ${(err as Error).message}`);
        continue;
      }
      const body = (await res.json().catch(() => ({}))) as {
        access_token?: string;
        error?: string;
        error_description?: string;
      };
      if (res.ok && body.access_token) return { token: body.access_token, node };
      const why = `${base}: ${res.status} ${body.error ?? ''} ${body.error_description ?? ''}`.trim();
      if (res.status === 410 && body.error === ERROR_CODES.ERR_SECRET_ERASED.oauthError)
        throw new KeymeshError('ERR_SECRET_ERASED', `the secret server says this user's secret was erased: ${why}`);
      if (res.status < 500) throw new KeymeshError('ERR_REMOTE', `the secret server refused: ${why}`);
      reasons.push(why);
    }
    throw new KeymeshError('ERR_REMOTE', `no secret-server node answered: ${reasons.join('; ')}`);
  }

  /** A `backend` call on the first node of the own cluster that answers. */
  async #own<T>(path: string, body: unknown): Promise<T> {
    const reasons: string[] = [];
    for (const base of this.#o.ownCluster) {
      let res: Response;
      try {
        res = await fetch(`${trim(base)}${path}`, {
          redirect: 'error',
          method: 'POST',
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(this.#o.timeoutMs ?? 10_000),
          headers: { authorization: `Bearer ${this.#o.backendToken}`, 'content-type': 'application/json' },
        });
      } catch (err) {
        reasons.push(`${base}: ${(err as Error).message}`);
        continue;
      }
      const json = (await res.json().catch(() => ({}))) as T & { error?: string; error_description?: string };
      if (res.ok) return json;
      const why = `${base}${path}: ${res.status} ${json.error ?? ''} ${json.error_description ?? ''}`.trim();
      if (res.status < 500) throw new KeymeshError('ERR_REMOTE', why);
      reasons.push(why);
    }
    throw new KeymeshError('ERR_REMOTE', `no node of the own cluster answered ${path}: ${reasons.join('; ')}`);
  }
}

/** The user a user token names: its `sub`, and its `iss` when it has one. Decoded only: the secret server verifies it. */
interface AskedUser {
  readonly sub: string;
  readonly iss: string | undefined;
}

/** @throws KeymeshError `ERR_INVALID_REQUEST` when `userJwt` is not a JWT naming a subject. */
function userOf(userJwt: string): AskedUser {
  let claims: JWTPayload;
  try {
    claims = decodeJwt(userJwt);
  } catch (err) {
    throw new KeymeshError('ERR_INVALID_REQUEST', `the user token is not a JWT: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (typeof claims.sub !== 'string' || claims.sub.length === 0)
    throw new KeymeshError('ERR_INVALID_REQUEST', 'the user token names no subject (sub)');
  return { sub: claims.sub, iss: typeof claims.iss === 'string' ? claims.iss : undefined };
}

/**
 * Refuses an answer about another user: its `sub` must be the user token's, and so must its `sub_id`
 * (RFC 9493 `iss_sub`: the user's issuer and subject) when it carries one.
 * @throws KeymeshError `ERR_REMOTE`
 */
function checkAboutUser(payload: JWTPayload, user: AskedUser): void {
  if (payload.sub !== user.sub)
    throw new KeymeshError(
      'ERR_REMOTE',
      "the secret server's answer is about another user (its sub is not the user token's)",
    );
  const subId = payload['sub_id'];
  if (subId === undefined) return;
  const { format, iss, sub } = (typeof subId === 'object' && subId !== null ? subId : {}) as Record<string, unknown>;
  if (format !== 'iss_sub' || sub !== user.sub || iss !== user.iss) {
    throw new KeymeshError(
      'ERR_REMOTE',
      "the secret server's answer is about another user (its sub_id is not the user token's issuer and subject)",
    );
  }
}

function trim(base: string): string {
  return base.replace(/\/+$/, '');
}
