/**
 * Registered OAuth clients of one realm's token service (`clients` in the config, those whose `realms` name it)
 * and their authentication.
 *
 * `client_secret_basic` (RFC 6749 §2.3.1): a generated secret is checked against its keyed hash at once; an
 * operator-chosen one against its scrypt hash on the slow-hash pool, then remembered in memory as an HMAC under
 * a key drawn at start, so the next request costs one HMAC (a wrong secret is never remembered).
 *
 * `private_key_jwt` (RFC 7523): a client assertion signed by a key of the client's registered `jwksUri`, its `jti`
 * recorded once through the register (the secret server's verifier, shared).
 *
 * A client may hold two hashes (`secretHashes`) during a rotation window; a secret matching either is accepted.
 *
 * Abuse: before anything is checked, the throttle refuses addresses and client ids with too many recent
 * failures (429); every failure is counted. Every failure answers the same `invalid_client` text, and every
 * failed secret check costs the same: one scrypt of the default cost on the pool, also for an unknown client id
 * and for a wrong generated secret, so neither the answer nor its timing tells which client ids exist. While a
 * client holds two scrypt hashes, a failure of that client costs two scrypts, so every failure of the registry
 * costs two (`#failureScrypts`): the cost follows the configuration, never the client id.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { decodeJwt, type JSONWebKeySet } from 'jose';
import { isKeymeshError, KeymeshError } from '../errors.js';
import type { ClientAssertionVerifier } from '../secret-server/client-assertions.js';
import type { AuthThrottle } from './auth-throttle.js';
import { CLIENT_SECRET_SCRYPT, fastSecretMatches, parseSecretHash, type SecretHash } from './client-secrets.js';
import type { SlowHashPool } from './slow-hash.js';

export { CLIENT_SECRET_SCRYPT, hashClientSecret, parseSecretHash } from './client-secrets.js';

/** The one description of every failed client authentication. */
export const CLIENT_AUTH_FAILED = 'client authentication failed';

/** A client's stored hashes by kind. */
interface ClientHashes {
  readonly fast: readonly Extract<SecretHash, { kind: 'hmac-sha256' }>[];
  readonly slow: readonly Extract<SecretHash, { kind: 'scrypt' }>[];
}
const NO_HASHES: ClientHashes = { fast: [], slow: [] };

/** A client as the config registers it: what it may get, each list granting nothing when empty. */
export interface ClientConfig {
  readonly clientId: string;
  readonly secretHash?: string | undefined;
  /** Instead of `secretHash`: one or two hashes (a rotation window); a secret matching either is accepted. */
  readonly secretHashes?: readonly string[] | undefined;
  readonly jwksUri?: string | undefined;
  readonly grants: readonly string[];
  readonly audiences: readonly string[];
  /** Scopes its tokens may carry. Default: none. */
  readonly scopes?: readonly string[] | undefined;
  /** Realms it belongs to. Default: the default realm. */
  readonly realms?: readonly string[] | undefined;
  /** Whether it may ask for and renew renewable tokens. Default: false. */
  readonly renewable?: boolean | undefined;
  readonly delegation?: boolean | undefined;
  /** Whether every token it gets must be DPoP-bound. Default: false. */
  readonly requireDpop?: boolean | undefined;
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
}

/** What a client authentication request carries besides the `Authorization` header. */
export interface ClientAuthForm {
  readonly client_assertion_type?: string | undefined;
  readonly client_assertion?: string | undefined;
}

export interface ClientRegistryOptions {
  readonly assertions?: ClientAssertionVerifier | undefined;
  /** Where scrypt runs; without one (unit tests), on the libuv pool. */
  readonly slowHash?: SlowHashPool | undefined;
  readonly throttle?: AuthThrottle | undefined;
}

export class ClientRegistry {
  readonly #clients: Map<string, ClientConfig>;
  /** Per client, its stored hashes by kind, split once here rather than on every request. */
  readonly #hashes = new Map<string, ClientHashes>();
  readonly #rememberKey = randomBytes(32);
  /** Per client, the HMACs of chosen secrets that passed scrypt, at most one per scrypt hash it holds. */
  readonly #verified = new Map<string, readonly Buffer[]>();
  /** How many scrypts every failed secret check costs: the most any client's failure needs (1 or 2). */
  readonly #failureScrypts: number;
  readonly #o: ClientRegistryOptions;

  constructor(clients: readonly ClientConfig[], options: ClientRegistryOptions | ClientAssertionVerifier = {}) {
    this.#clients = new Map(clients.map((c) => [c.clientId, c]));
    this.#o = 'verify' in options ? { assertions: options } : options;
    for (const c of clients) {
      const parsed = (c.secretHashes ?? (c.secretHash === undefined ? [] : [c.secretHash])).flatMap(
        (text) => parseSecretHash(text) ?? [],
      );
      if (parsed.length > 0)
        this.#hashes.set(c.clientId, {
          fast: parsed.filter((h) => h.kind === 'hmac-sha256'),
          slow: parsed.filter((h) => h.kind === 'scrypt'),
        });
    }
    this.#failureScrypts = Math.max(1, ...[...this.#hashes.values()].map((hashes) => hashes.slow.length));
  }

  /**
   * The client a request authenticates: by client assertion when the form carries one, else by Basic credentials.
   * `source` is the caller's address, for the throttle.
   * @throws KeymeshError `ERR_INVALID_CLIENT`, `ERR_INVALID_REQUEST` (two methods at once), `ERR_TOO_MANY_ATTEMPTS`,
   *   `ERR_OVERLOADED`, or `ERR_IDP_UNAVAILABLE` when the client's key set is unreachable.
   */
  async authenticate(
    authorization: string | undefined,
    form: ClientAuthForm,
    source = 'unknown',
  ): Promise<ClientConfig> {
    const assertion = form.client_assertion !== undefined || form.client_assertion_type !== undefined;
    if (authorization === '') authorization = undefined;
    if (assertion && authorization !== undefined)
      throw new KeymeshError('ERR_INVALID_REQUEST', 'use one client authentication method, not two');
    // the Basic header is parsed once: its client id is counted by the throttle, and its secret checked
    const credentials = assertion ? undefined : parseBasic(authorization);
    const presented = assertion ? assertionIssuer(form.client_assertion) : credentials?.clientId;
    await this.#o.throttle?.check(source, presented);
    try {
      return assertion ? await this.#authenticateAssertion(form) : await this.#authenticateCredentials(credentials);
    } catch (err) {
      throw await this.#failure(err, source, presented);
    }
  }

  /**
   * The client `clientId`, authenticated by a signature that `check` verifies against the client's registered key
   * set (a WS-Security signed request of a `private_key_jwt` client). The set is read from the cache and fetched
   * again once when the signature does not verify with it (a new key), unless it was fetched moments ago. Throttled
   * like every other method.
   * @throws KeymeshError `ERR_INVALID_CLIENT`, `ERR_TOO_MANY_ATTEMPTS`, `ERR_IDP_UNAVAILABLE`.
   */
  async authenticateByKey(
    clientId: string,
    check: (keys: JSONWebKeySet) => boolean,
    source = 'unknown',
  ): Promise<ClientConfig> {
    await this.#o.throttle?.check(source, clientId);
    try {
      const client = this.#clients.get(clientId);
      const keys = client ? this.#o.assertions?.keySet(clientId) : undefined;
      if (!client || !keys) throw new KeymeshError('ERR_INVALID_CLIENT', 'unknown client, or one without a key set');
      let set = keys.jwks();
      if (set === undefined || !keys.fresh) {
        await keys.reload();
        set = keys.jwks();
      }
      if (set !== undefined && check(set)) return client;
      if (!keys.coolingDown) {
        await keys.reload();
        set = keys.jwks();
        if (set !== undefined && check(set)) return client;
      }
      throw new KeymeshError('ERR_INVALID_CLIENT', 'the signature does not verify with a key of the client');
    } catch (err) {
      throw await this.#failure(err, source, clientId);
    }
  }

  /** What a failed authentication throws, counted by the throttle. */
  async #failure(err: unknown, source: string, presented: string | undefined): Promise<unknown> {
    // an attempt that could not be checked counts against its address, never its client id: otherwise a flood
    // that keeps the pool busy (or the client's key set down) is never throttled, or locks the client out
    if (isKeymeshError(err, 'ERR_OVERLOADED') || isKeymeshError(err, 'ERR_IDP_UNAVAILABLE'))
      await this.#o.throttle?.unchecked(source);
    if (!isKeymeshError(err, 'ERR_INVALID_CLIENT')) return err;
    await this.#o.throttle?.failed(source, presented);
    return new KeymeshError('ERR_INVALID_CLIENT', CLIENT_AUTH_FAILED, { cause: err });
  }

  get(clientId: string): ClientConfig | undefined {
    return this.#clients.get(clientId);
  }

  async #authenticateAssertion(form: ClientAuthForm): Promise<ClientConfig> {
    if (!this.#o.assertions)
      throw new KeymeshError('ERR_INVALID_CLIENT', 'no client authenticates with private_key_jwt here');
    const { clientId } = await this.#o.assertions.verify(form.client_assertion_type, form.client_assertion);
    const client = this.#clients.get(clientId);
    if (!client) throw new KeymeshError('ERR_INVALID_CLIENT', 'the assertion is from no client of this realm');
    return client;
  }

  /**
   * The client an `Authorization: Basic` header authenticates.
   * @throws KeymeshError `ERR_INVALID_CLIENT` for a missing, malformed or wrong credential or an unknown client;
   *   `ERR_OVERLOADED` when the slow-hash queue is full.
   */
  authenticateBasic(authorization: string | undefined): Promise<ClientConfig> {
    return this.#authenticateCredentials(parseBasic(authorization));
  }

  async #authenticateCredentials(credentials: BasicCredentials | undefined): Promise<ClientConfig> {
    if (!credentials)
      throw new KeymeshError(
        'ERR_INVALID_CLIENT',
        'client authentication required: client_secret_basic (Authorization: Basic) or private_key_jwt',
      );
    const client = this.#clients.get(credentials.clientId);
    if (!client || !(await this.#secretMatches(client, credentials.secret))) {
      if (!client) await this.#dummyChecks(credentials.secret, this.#failureScrypts);
      throw new KeymeshError('ERR_INVALID_CLIENT', 'unknown client or wrong secret');
    }
    return client;
  }

  /** Whether `secret` matches any hash of `client`; a failure always costs `#failureScrypts` scrypts. */
  async #secretMatches(client: ClientConfig, secret: string): Promise<boolean> {
    const { fast, slow } = this.#hashes.get(client.clientId) ?? NO_HASHES;
    // every generated-secret hash is checked (microseconds each), not only up to the first that matches
    let fastMatch = false;
    for (const h of fast) if (fastSecretMatches(h, secret)) fastMatch = true;
    if (fastMatch) return true;
    if (slow.length > 0) {
      const mac = createHmac('sha256', this.#rememberKey).update(`${client.clientId}\0${secret}`).digest();
      const known = this.#verified.get(client.clientId) ?? [];
      if (known.some((k) => timingSafeEqual(k, mac))) return true;
      for (const h of slow) {
        const hash = await this.#scrypt({ secret, salt: h.salt, N: h.N, r: h.r, p: h.p, keylen: h.hash.length });
        if (!timingSafeEqual(hash, h.hash)) continue;
        this.#verified.set(client.clientId, [...known, mac].slice(-slow.length));
        return true;
      }
    }
    await this.#dummyChecks(secret, this.#failureScrypts - slow.length);
    return false;
  }

  /** `count` times the cost of a failed check of an operator-chosen secret, so that every failure costs the same. */
  async #dummyChecks(secret: string, count: number): Promise<void> {
    for (let i = 0; i < count; i++)
      await this.#scrypt({ secret, salt: randomBytes(16), ...CLIENT_SECRET_SCRYPT, keylen: 32 });
  }

  async #scrypt(task: {
    secret: string;
    salt: Uint8Array;
    N: number;
    r: number;
    p: number;
    keylen: number;
  }): Promise<Buffer> {
    if (this.#o.slowHash) return Buffer.from(await this.#o.slowHash.scrypt(task));
    const { scrypt } = await import('node:crypto');
    return new Promise((resolve, reject) =>
      scrypt(
        task.secret,
        task.salt,
        task.keylen,
        { N: task.N, r: task.r, p: task.p, maxmem: 256 * task.N * task.r },
        (err, out) => (err ? reject(err) : resolve(out)),
      ),
    );
  }
}

/** application/x-www-form-urlencoded decoding of one value; most credentials hold nothing to decode. */
function formDecode(text: string): string {
  return text.includes('%') || text.includes('+') ? decodeURIComponent(text.replaceAll('+', ' ')) : text;
}

interface BasicCredentials {
  readonly clientId: string;
  readonly secret: string;
}

/** The client id and secret of an `Authorization: Basic` header (RFC 6749 §2.3.1: form-urlencoded, then Basic). */
function parseBasic(authorization: string | undefined): BasicCredentials | undefined {
  const m = /^Basic ([A-Za-z0-9+/=]{1,2048})$/i.exec(authorization ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 1) return undefined;
  try {
    return { clientId: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
  } catch {
    return undefined;
  }
}

/** The `iss` of a client assertion, unverified (to count failures by client id); undefined when it has none. */
export function assertionIssuer(assertion: string | undefined): string | undefined {
  try {
    const iss = assertion === undefined ? undefined : decodeJwt(assertion).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}
