/**
 * Everyone around the cluster in a chaos run, in the harness process (on loopback, or with `--net netns` on the
 * bridge address over https, see `netns-network.ts`): an IDP whose users ask for
 * their secrets, and a resource server that is both the secret server's registered caller (client assertions
 * signed with its key, secrets encrypted to its POP) and the token service's OAuth client `rs` (client secret,
 * JWT access tokens, SCTs whose keys it receives encrypted to its POP). Plus the cluster's configuration: the
 * chaos profile, with key and token lifetimes of seconds so that rotations, expiries and revocations all happen
 * within a run.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { compactDecrypt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { hashClientSecret } from '../../src/tokens/clients.js';
import type { PartiesPlace } from './network.js';

export const CHAOS_ISSUER = 'https://keymesh.chaos.example';
export const IDP_ISSUER = 'https://idp.chaos.example';
export const RS_AUDIENCE = 'https://rs.chaos.example';
export const RS_CLIENT_ID = 'rs';
/** The audience of the IDP's user tokens. */
const USER_TOKEN_AUDIENCE = 'app';

/**
 * The chaos profile: default membership timing, keys published 8 s before use and retired 30 s after their slot,
 * tokens of at most 20 s, relying parties caching the JWKS for 2 s, 5 s of clock skew tolerated (the skew fault
 * stays below it). Forced rotations (every few seconds) make the rotations; a slot is the shortest allowed, 1 min.
 * Pre-publication is longer than the largest skew plus two JWKS lifetimes: a node whose clock lags shows a new
 * key only once its own clock reaches the key's `publishAt`, and it must still do so before the key is used.
 */
export const CHAOS_PROFILE = {
  log: { level: 'info' },
  replicationFactor: 3,
  clockSkewMs: 5_000,
  jwks: { maxAgeMs: 2_000 },
  keys: { rotationPeriodMs: 60_000, prePublishMs: 8_000, retireAfterMs: 30_000 },
  tokens: { maxLifetimeMs: 20_000 },
  pop: { ciphertextLifetimeMs: 20_000 },
} as const;

/** Every key the parties hold and the servers that publish their public halves. */
export class Parties {
  /** The client secret of `rs` at the token service (only its scrypt hash is in the config). */
  readonly clientSecret = randomBytes(24).toString('base64url');
  readonly #idpKey: CryptoKey;
  readonly #rsSig: CryptoKey;
  readonly #rsEnc: CryptoKey;
  readonly #servers: Server[];
  readonly idpJwksUrl: string;
  readonly rsPopUrl: string;

  private constructor(keys: { idp: CryptoKey; rsSig: CryptoKey; rsEnc: CryptoKey }, servers: Server[], urls: { idp: string; rs: string }) {
    this.#idpKey = keys.idp;
    this.#rsSig = keys.rsSig;
    this.#rsEnc = keys.rsEnc;
    this.#servers = servers;
    this.idpJwksUrl = urls.idp;
    this.rsPopUrl = urls.rs;
  }

  /** Starts the key-set servers where `place` says (default: plain http on 127.0.0.1). */
  static async start(place: PartiesPlace = { host: '127.0.0.1' }): Promise<Parties> {
    const idp = await generateKeyPair('ES256', { extractable: true });
    const rsSig = await generateKeyPair('ES256', { extractable: true });
    const rsEnc = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
    const publicJwk = async (key: CryptoKey, kid: string, alg: string, use: string): Promise<JWK> => ({ ...(await exportJWK(key)), kid, alg, use });
    const idpDoc = { keys: [await publicJwk(idp.publicKey, 'idp-1', 'ES256', 'sig')] };
    const rsDoc = { keys: [await publicJwk(rsEnc.publicKey, 'rs-enc', 'ECDH-ES+A256KW', 'enc'), await publicJwk(rsSig.publicKey, 'rs-sig', 'ES256', 'sig')] };
    const [idpServer, idpUrl] = await serve(idpDoc, place);
    const [rsServer, rsUrl] = await serve(rsDoc, place);
    return new Parties({ idp: idp.privateKey, rsSig: rsSig.privateKey, rsEnc: rsEnc.privateKey }, [idpServer, rsServer], { idp: `${idpUrl}/jwks`, rs: `${rsUrl}/pop` });
  }

  /** The cluster's configuration: the chaos profile, the IDP, the resource server and the client. */
  async clusterConfig(): Promise<Record<string, unknown>> {
    const { keys, tokens, pop, ...rest } = CHAOS_PROFILE;
    return {
      ...rest,
      realms: { default: { issuer: CHAOS_ISSUER, keys: { sig: keys, enc: keys, secret: keys }, tokens, pop } },
      trustedIssuers: [{ issuer: IDP_ISSUER, jwksUri: this.idpJwksUrl, algorithms: ['ES256'] }],
      resourceServers: [{ audience: RS_AUDIENCE, clientId: RS_CLIENT_ID, jwksUri: this.rsPopUrl, userTokenAudiences: [USER_TOKEN_AUDIENCE] }],
      clients: [{ clientId: RS_CLIENT_ID, secretHash: await hashClientSecret(this.clientSecret), grants: ['client_credentials'], audiences: [RS_AUDIENCE] }],
    };
  }

  /** A user's token from the IDP, valid for 5 minutes. */
  userToken(subject: string): Promise<string> {
    return new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'idp-1' }).setIssuer(IDP_ISSUER).setSubject(subject)
      .setAudience(USER_TOKEN_AUDIENCE).setIssuedAt().setExpirationTime('5m').sign(this.#idpKey);
  }

  /** A fresh RFC 7523 client assertion of the resource server for the secret server. */
  clientAssertion(): Promise<string> {
    return new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'rs-sig' }).setIssuer(RS_CLIENT_ID).setSubject(RS_CLIENT_ID)
      .setAudience(CHAOS_ISSUER).setIssuedAt().setExpirationTime('1m').sign(this.#rsSig);
  }

  /** `Authorization` for the token service. */
  basicAuth(): string {
    return `Basic ${Buffer.from(`${RS_CLIENT_ID}:${this.clientSecret}`).toString('base64')}`;
  }

  /** Opens a JWE encrypted to the resource server's POP. */
  async decrypt(jwe: string): Promise<Uint8Array> {
    return (await compactDecrypt(jwe, this.#rsEnc)).plaintext;
  }

  async close(): Promise<void> {
    await Promise.all(this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

/** A secret's fingerprint for the history: the first 16 bytes of its SHA-256, hex. */
export function fingerprint(secret: Uint8Array): string {
  return createHash('sha256').update(secret).digest('hex').slice(0, 32);
}

async function serve(doc: unknown, place: PartiesPlace): Promise<[Server, string]> {
  const body = JSON.stringify(doc);
  const answer: RequestListener = (_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(body);
  };
  const server: Server = place.tls === undefined ? createServer(answer) : createTlsServer({ cert: place.tls.cert, key: place.tls.key }, answer);
  await new Promise<void>((resolve) => server.listen(0, place.host, resolve));
  return [server, `${place.tls === undefined ? 'http' : 'https'}://${place.host}:${(server.address() as AddressInfo).port}`];
}
