/**
 * The token service the SAML tests share: an RS256 realm, in-memory token store, revocations and records, a fake
 * clock, clients (one with a secret, one delegation server with its own key set on loopback) and helpers.
 * Importing it registers the hooks that start and stop the key-set server.
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { exportJWK } from 'jose';
import { afterAll, beforeAll } from 'vitest';
import { isKeymeshError } from '../../../src/errors.js';
import { buildAssertion } from '../../../src/saml/assertion.js';
import { signAssertion } from '../../../src/saml/sign.js';
import { ClientRegistry, type ClientConfig, hashClientSecret } from '../../../src/tokens/clients.js';
import { DpopNonces, DpopVerifier } from '../../../src/tokens/dpop.js';
import { JwtAccessTokenProvider } from '../../../src/tokens/jwt-provider.js';
import { TokenProviders, type TokenStore } from '../../../src/tokens/provider.js';
import { SamlTokenProvider } from '../../../src/tokens/saml-provider.js';
import { SubjectTokens } from '../../../src/tokens/subject-tokens.js';
import { TokenService } from '../../../src/tokens/token-service.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { startJwksServer, type JwksServer } from '../../helpers/jwks-server.js';

export const ISSUER = 'https://sts.example';
/** The secret of `rs`: a client of its own, with no renewals, no exchange and another audience. */
export const RS_SECRET = 'the-rs-client-secret';
export const APP_SECRET = 'the-app-client-secret';
export const X = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const AT = 'urn:ietf:params:oauth:token-type:access_token';
export const clock = new FakeClock(Date.now());
const revoked = new Set<string>();
const recorded = new Set<string>();
const claimed = new Map<string, string>();
export const stored = new Map<string, { value: Uint8Array; exp: number }>();
export const store: TokenStore = {
  put: async (id, value, exp) => {
    if (!stored.has(id)) stored.set(id, { value, exp });
    return stored.get(id)!.value;
  },
  get: async (id) => {
    const entry = stored.get(id);
    return entry && entry.exp * 1000 > clock.now() ? entry.value : undefined;
  },
};

export const realmKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const serverKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
let serverKeys: JwksServer;
/** When set, the realm signs with this key from now on (a rotation to another algorithm). */
export let signingOverride: { kid: string; alg: string; key: KeyObject } | undefined;
export let service: TokenService;
let clients: ClientConfig[];
export const client = (id: string) => clients.find((c) => c.clientId === id)!;

export async function code(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isKeymeshError(err) ? `${err.code}: ${err.message}` : `no error (${String(err)})`;
}

export function serviceWith(alg: 'RS256' | 'EdDSA', key: KeyObject, jwk: Record<string, unknown>): TokenService {
  const isRevoked = async (jti: string) => revoked.has(jti);
  const keys = () => ({ version: 1, jwks: () => ({ keys: [{ ...jwk, kid: 'k1', alg, use: 'sig' }] }) });
  const jwt = new JwtAccessTokenProvider({
    verificationKeys: keys,
    issuer: () => ISSUER,
    isRevoked,
    now: () => clock.now(),
    clockSkewS: 0,
  });
  const saml = new SamlTokenProvider({
    tokenStore: store,
    verificationKeys: keys,
    issuer: () => ISSUER,
    isRevoked,
    now: () => clock.now(),
    clockSkewS: 0,
  });
  const recordOnce = async (k: string) => !recorded.has(k) && recorded.add(k) !== undefined;
  const nonces = new DpopNonces({ clock, secretKeys: () => [{ kid: 's', key: new Uint8Array(32) }] });
  return new TokenService({
    realm: 'default',
    clients: new ClientRegistry(clients),
    providers: new TokenProviders().register(jwt).register(saml),
    jwt,
    saml,
    subjects: new SubjectTokens({
      jwt,
      saml,
      realm: 'default',
      issuer: ISSUER,
      isRevoked,
      clients,
      recordOnce,
      clock,
      clockSkewMs: 0,
    }),
    sts: {
      issuer: ISSUER,
      signingKey: async () => signingOverride ?? { kid: 'k1', alg, key },
      maxLifetimeS: 3600,
      now: () => clock.now(),
    },
    tokenStore: store,
    isRevoked,
    recordRevocation: async (jti) => void revoked.add(jti),
    encryptionFor: async () => {
      throw new Error('no POP in this test');
    },
    caller: (c) => ({ clientId: c.clientId, audiences: c.clientId === 'rs' ? ['https://a.example'] : [] }),
    claimOnce: async (k, value) => {
      if (!claimed.has(k)) claimed.set(k, value);
      return claimed.get(k)!;
    },
    dpop: { verifier: new DpopVerifier({ clock, recordOnce, nonces }), nonces },
  });
}

/** An assertion by the delegation server `server` about `user`, signed with its own key. */
export function serverAssertion(id: string, overrides: { audience?: string; lifetimeS?: number; user?: string } = {}) {
  const now = Math.floor(clock.now() / 1000);
  const doc = buildAssertion({
    id,
    issuer: 'server',
    issueInstant: now,
    subject: { nameId: overrides.user ?? 'alice' },
    notBefore: now,
    notOnOrAfter: now + (overrides.lifetimeS ?? 120),
    audiences: [overrides.audience ?? ISSUER],
    attributes: { email: 'alice@example.test', client_id: 'forged' },
    confirmation: { method: 'bearer' },
  });
  return signAssertion(doc, { kid: 'server-1', alg: 'ES256', key: serverKey.privateKey });
}

beforeAll(async () => {
  const serverJwk = { ...(await exportJWK(serverKey.publicKey)), kid: 'server-1', alg: 'ES256', use: 'sig' };
  serverKeys = await startJwksServer(() => ({ keys: [serverJwk] }));
  clients = [
    {
      clientId: 'app',
      secretHash: await hashClientSecret(APP_SECRET, { N: 1024, r: 8, p: 1 }),
      grants: ['client_credentials', X],
      audiences: ['https://a.example'],
      scopes: ['read'],
      renewable: true,
      claims: { tier: 'gold' },
    },
    {
      clientId: 'rs',
      secretHash: await hashClientSecret(RS_SECRET, { N: 1024, r: 8, p: 1 }),
      grants: ['client_credentials'],
      audiences: ['https://b.example'],
    },
    {
      clientId: 'server',
      grants: [X],
      audiences: ['https://a.example'],
      delegation: true,
      jwksUri: `${serverKeys.base}/keys`,
    },
    { clientId: 'plain', grants: [X], audiences: ['https://a.example'] },
  ];
  service = serviceWith('RS256', realmKey.privateKey, await exportJWK(realmKey.publicKey));
});
afterAll(() => serverKeys.close());

/** The realm signs with `override` from now on (a rotation to another algorithm); undefined: its own key again. */
export function setSigningOverride(override: typeof signingOverride): void {
  signingOverride = override;
}
