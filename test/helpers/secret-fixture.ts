/**
 * An identity provider and a resource server on loopback, and the token exchange against a cluster's secret
 * server: what a test needs to create and fetch users' secrets on real nodes.
 */
import {
  compactDecrypt,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
} from 'jose';
import { CLIENT_ASSERTION_TYPE } from '../../src/config/defaults.js';
import { FAST_CLUSTER_CONFIG } from './cluster.js';
import { startJwksServer, type JwksServer } from './jwks-server.js';

export const ISSUER = 'https://dc2.example';
export const IDP = 'https://idp.example';
export const AUDIENCE = 'https://rs.example';

export class SecretFixture {
  readonly #idp: JwksServer;
  readonly #rs: JwksServer;
  readonly #idpKey: CryptoKey;
  readonly #rsSig: CryptoKey;
  readonly #rsEnc: CryptoKey;

  private constructor(idp: JwksServer, rs: JwksServer, keys: { idp: CryptoKey; sig: CryptoKey; enc: CryptoKey }) {
    this.#idp = idp;
    this.#rs = rs;
    this.#idpKey = keys.idp;
    this.#rsSig = keys.sig;
    this.#rsEnc = keys.enc;
  }

  static async start(): Promise<SecretFixture> {
    const i = await generateKeyPair('ES256', { extractable: true });
    const s = await generateKeyPair('ES256', { extractable: true });
    const e = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
    const idpDoc = { keys: [{ ...(await exportJWK(i.publicKey)), kid: 'idp-1', alg: 'ES256', use: 'sig' }] };
    const popDoc = {
      keys: [
        { ...(await exportJWK(e.publicKey)), kid: 'rs-enc', alg: 'ECDH-ES+A256KW', use: 'enc' },
        { ...(await exportJWK(s.publicKey)), kid: 'rs-sig', alg: 'ES256', use: 'sig' },
      ],
    };
    return new SecretFixture(await startJwksServer(() => idpDoc), await startJwksServer(() => popDoc), {
      idp: i.privateKey,
      sig: s.privateKey,
      enc: e.privateKey,
    });
  }

  async close(): Promise<void> {
    await this.#idp.close();
    await this.#rs.close();
  }

  /** The cluster config that trusts the identity provider and knows the resource server. */
  config(): Record<string, unknown> {
    return {
      ...FAST_CLUSTER_CONFIG,
      realms: { default: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: ISSUER } },
      trustedIssuers: [{ issuer: IDP, jwksUri: `${this.#idp.base}/jwks`, algorithms: ['ES256'] }],
      resourceServers: [
        { audience: AUDIENCE, clientId: 'rs-1', jwksUri: `${this.#rs.base}/pop`, userTokenAudiences: ['app'] },
      ],
    };
  }

  /** Exchanges a user token of `subject` at `baseUrl`'s secret server. */
  async exchange(baseUrl: string, subject: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'idp-1' })
      .setIssuer(IDP)
      .setSubject(subject)
      .setAudience('app')
      .setIssuedAt()
      .setExpirationTime(now + 300)
      .sign(this.#idpKey);
    const assertion = await new SignJWT({ jti: `j-${Math.random().toString(36).slice(2)}` })
      .setProtectedHeader({ alg: 'ES256', kid: 'rs-sig' })
      .setIssuer('rs-1')
      .setSubject('rs-1')
      .setAudience(ISSUER)
      .setIssuedAt()
      .setExpirationTime(now + 60)
      .sign(this.#rsSig);
    const form = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: token,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      audience: AUDIENCE,
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: assertion,
    });
    const res = await fetch(`${baseUrl}/secret-server/token-exchange`, {
      method: 'POST',
      body: form,
      signal: AbortSignal.timeout(15_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** `subject`'s secret as `baseUrl` answers it (hex), verified against the node's JWKS and opened with the resource server's key. */
  async secret(baseUrl: string, subject: string): Promise<string> {
    const answer = await this.exchange(baseUrl, subject);
    if (answer.status !== 200)
      throw new Error(`exchange for ${subject} at ${baseUrl}: ${answer.status} ${JSON.stringify(answer.body)}`);
    const jwks = (await (await fetch(`${baseUrl}/.well-known/jwks.json`)).json()) as { keys: JWK[] };
    const { payload } = await jwtVerify(answer.body['access_token'] as string, createLocalJWKSet(jwks), {
      issuer: ISSUER,
      audience: AUDIENCE,
    });
    const jwe = (payload['secret'] as Record<string, string>)[AUDIENCE]!;
    return Buffer.from((await compactDecrypt(jwe, this.#rsEnc)).plaintext).toString('hex');
  }
}
