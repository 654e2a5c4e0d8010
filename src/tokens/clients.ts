/**
 * Registered OAuth clients of the token service (`clients` in the config) and their authentication.
 *
 * `client_secret_basic` (RFC 6749 §2.3.1): the secret is checked against its stored salted scrypt hash
 * (`scrypt$N$r$p$salt$hash`, made by `keymesh hash-client-secret`). scrypt is slow on purpose, so a secret that
 * verified once is remembered in memory as an HMAC under a key drawn at start: the next request costs one HMAC,
 * and nothing unsalted is ever written anywhere. A wrong secret is never remembered.
 *
 * `private_key_jwt` (RFC 7523): a client assertion signed by a key of the client's registered `jwksUri`, its `jti`
 * recorded once through the register (the secret server's verifier, shared).
 */
import { createHmac, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { KeymeshError } from '../errors.js';
import type { ClientAssertionVerifier } from '../secret-server/client-assertions.js';

const scryptAsync = promisify(scrypt) as (password: string, salt: Buffer, keylen: number, options: { N: number; r: number; p: number; maxmem: number }) => Promise<Buffer>;

/** scrypt cost of new secret hashes: N = 2^15, r = 8, p = 1 (about 50 ms here). */
export const CLIENT_SECRET_SCRYPT = { N: 1 << 15, r: 8, p: 1 } as const;
const HASH_BYTES = 32;

/** A client as the config registers it. */
export interface ClientConfig {
  readonly clientId: string;
  readonly secretHash?: string | undefined;
  readonly jwksUri?: string | undefined;
  readonly grants: readonly string[];
  readonly audiences: readonly string[];
  readonly delegation?: boolean | undefined;
  readonly claims?: Readonly<Record<string, unknown>> | undefined;
}

/** Hashes a client secret for the config. */
export async function hashClientSecret(secret: string, cost: { N: number; r: number; p: number } = CLIENT_SECRET_SCRYPT): Promise<string> {
  if (secret.length < 16) throw new KeymeshError('ERR_INVALID_REQUEST', 'a client secret must be at least 16 characters');
  const salt = randomBytes(16);
  const hash = await scryptAsync(secret, salt, HASH_BYTES, { ...cost, maxmem: 256 * cost.N * cost.r });
  return `scrypt$${cost.N}$${cost.r}$${cost.p}$${salt.toString('base64url')}$${hash.toString('base64url')}`;
}

/** The parts of a stored hash; `undefined` when it is not one. */
export function parseSecretHash(text: string): { N: number; r: number; p: number; salt: Buffer; hash: Buffer } | undefined {
  const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]{16,})\$([A-Za-z0-9_-]{43})$/.exec(text);
  if (!m) return undefined;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (N < 2 || (N & (N - 1)) !== 0 || N > 1 << 20 || r < 1 || r > 32 || p < 1 || p > 16) return undefined;
  return { N, r, p, salt: Buffer.from(m[4]!, 'base64url'), hash: Buffer.from(m[5]!, 'base64url') };
}

export class ClientRegistry {
  readonly #clients: Map<string, ClientConfig>;
  readonly #rememberKey = randomBytes(32);
  readonly #verified = new Map<string, Buffer>();
  readonly #assertions: ClientAssertionVerifier | undefined;

  constructor(clients: readonly ClientConfig[], assertions?: ClientAssertionVerifier) {
    this.#clients = new Map(clients.map((c) => [c.clientId, c]));
    this.#assertions = assertions;
  }

  /**
   * The client a request authenticates: by client assertion when the form carries one, else by Basic credentials.
   * @throws KeymeshError `ERR_INVALID_CLIENT` (or `ERR_IDP_UNAVAILABLE` when the client's key set is unreachable).
   */
  async authenticate(authorization: string | undefined, form: { client_assertion_type?: string | undefined; client_assertion?: string | undefined }): Promise<ClientConfig> {
    if (form.client_assertion === undefined && form.client_assertion_type === undefined) return this.authenticateBasic(authorization);
    if (authorization) throw new KeymeshError('ERR_INVALID_CLIENT', 'use one client authentication method, not two');
    if (!this.#assertions) throw new KeymeshError('ERR_INVALID_CLIENT', 'no client authenticates with private_key_jwt here');
    const { clientId } = await this.#assertions.verify(form.client_assertion_type, form.client_assertion);
    return this.#clients.get(clientId)!;
  }

  get(clientId: string): ClientConfig | undefined {
    return this.#clients.get(clientId);
  }

  /**
   * The client an `Authorization: Basic` header authenticates.
   * @throws KeymeshError `ERR_INVALID_CLIENT` for a missing, malformed or wrong credential or an unknown client.
   */
  async authenticateBasic(authorization: string | undefined): Promise<ClientConfig> {
    const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(authorization ?? '');
    if (!m) throw new KeymeshError('ERR_INVALID_CLIENT', 'client authentication required: client_secret_basic (Authorization: Basic)');
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 1) throw new KeymeshError('ERR_INVALID_CLIENT', 'malformed Basic credentials');
    let clientId: string;
    let secret: string;
    try {
      clientId = decodeURIComponent(decoded.slice(0, colon).replaceAll('+', ' '));
      secret = decodeURIComponent(decoded.slice(colon + 1).replaceAll('+', ' '));
    } catch {
      throw new KeymeshError('ERR_INVALID_CLIENT', 'malformed Basic credentials');
    }
    const client = this.#clients.get(clientId);
    if (!client?.secretHash) throw new KeymeshError('ERR_INVALID_CLIENT', 'unknown client, or one without a secret');
    if (!(await this.#secretMatches(client, secret))) throw new KeymeshError('ERR_INVALID_CLIENT', 'wrong client secret');
    return client;
  }

  async #secretMatches(client: ClientConfig, secret: string): Promise<boolean> {
    const mac = createHmac('sha256', this.#rememberKey).update(client.clientId).update('\0').update(secret).digest();
    const known = this.#verified.get(client.clientId);
    if (known && timingSafeEqual(known, mac)) return true;
    const stored = parseSecretHash(client.secretHash!);
    if (!stored) return false;
    const hash = await scryptAsync(secret, stored.salt, stored.hash.length, { N: stored.N, r: stored.r, p: stored.p, maxmem: 256 * stored.N * stored.r });
    if (!timingSafeEqual(hash, stored.hash)) return false;
    this.#verified.set(client.clientId, mac);
    return true;
  }
}
