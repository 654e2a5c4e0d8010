/**
 * SAML 2.0 assertions through the token service's operations, with a fake clock and in-memory stores: issue,
 * introspection, revocation, renewal and token exchange both ways, the record that makes an assertion one this
 * realm issued, holder-of-key, and the delegation server's own assertion of a user (replay, audience, lifetime).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { decodeJwt, exportJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKeymeshError, KeymeshError } from '../../../src/errors.js';
import { buildAssertion } from '../../../src/saml/assertion.js';
import { signAssertion } from '../../../src/saml/sign.js';
import { verifyAssertion } from '../../../src/saml/verify.js';
import { ClientRegistry, type ClientConfig, hashClientSecret } from '../../../src/tokens/clients.js';
import { DpopNonces, DpopVerifier } from '../../../src/tokens/dpop.js';
import { JwtAccessTokenProvider } from '../../../src/tokens/jwt-provider.js';
import { TOKEN_TYPE_SAML2, TokenProviders, type TokenStore } from '../../../src/tokens/provider.js';
import { SamlTokenProvider } from '../../../src/tokens/saml-provider.js';
import { SubjectTokens } from '../../../src/tokens/subject-tokens.js';
import { TokenService } from '../../../src/tokens/token-service.js';
import { wsTrustOperations } from '../../../src/tokens/ws-trust-operations.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { startJwksServer, type JwksServer } from '../../helpers/jwks-server.js';

const ISSUER = 'https://sts.example';
const APP_SECRET = 'the-app-client-secret';
const X = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const clock = new FakeClock(Date.now());
const revoked = new Set<string>();
const recorded = new Set<string>();
const claimed = new Map<string, string>();
const stored = new Map<string, { value: Uint8Array; exp: number }>();
const store: TokenStore = {
  put: async (id, value, exp) => {
    if (!stored.has(id)) stored.set(id, { value, exp });
    return stored.get(id)!.value;
  },
  get: async (id) => {
    const entry = stored.get(id);
    return entry && entry.exp * 1000 > clock.now() ? entry.value : undefined;
  },
};

const realmKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const serverKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
let serverKeys: JwksServer;
/** When set, the realm signs with this key from now on (a rotation to another algorithm). */
let signingOverride: { kid: string; alg: string; key: KeyObject } | undefined;
let service: TokenService;
let clients: ClientConfig[];
const client = (id: string) => clients.find((c) => c.clientId === id)!;

async function code(p: Promise<unknown>): Promise<string> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return isKeymeshError(err) ? `${err.code}: ${err.message}` : `no error (${String(err)})`;
}

function serviceWith(alg: 'RS256' | 'EdDSA', key: KeyObject, jwk: Record<string, unknown>): TokenService {
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
function serverAssertion(id: string, overrides: { audience?: string; lifetimeS?: number; user?: string } = {}) {
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
    { clientId: 'rs', grants: ['client_credentials'], audiences: ['https://b.example'] },
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

describe('SAML assertions through the token service', () => {
  it('issues a signed assertion that introspects active only for the parties it concerns', async () => {
    const issued = await service.clientCredentials(client('app'), {
      requestedTokenType: TOKEN_TYPE_SAML2,
      scope: 'read',
    });
    const verified = verifyAssertion(issued.token, {
      keys: () => [realmKey.publicKey],
      issuer: ISSUER,
      audiences: ['https://a.example'],
      now: clock.now(),
      clockSkewS: 0,
    });
    expect(verified.subject.nameId).toBe('app');
    expect(verified.attributes).toMatchObject({ client_id: ['app'], scope: ['read'], tier: ['gold'] });
    expect(await service.introspect(issued.token, undefined, client('app'))).toMatchObject({
      active: true,
      sub: 'app',
      aud: 'https://a.example',
      client_id: 'app',
      scope: 'read',
      jti: issued.tokenId,
      tier: 'gold',
    });
    expect(await service.introspect(issued.token, undefined, client('rs'))).toMatchObject({ active: true });
    expect(await service.introspect(issued.token, undefined, client('plain'))).toEqual({ active: false });
  });

  it('is inactive once tampered, expired, or without the record this realm keeps of it', async () => {
    const issued = await service.clientCredentials(client('app'), { requestedTokenType: TOKEN_TYPE_SAML2 });
    const tampered = issued.token.replace('>app<', '>admin<');
    expect(tampered).not.toBe(issued.token);
    expect(await service.introspect(tampered, undefined, client('app'))).toEqual({ active: false });
    const [id] = [...stored.keys()].slice(-1);
    const entry = stored.get(id!)!;
    stored.delete(id!);
    expect(await service.introspect(issued.token, undefined, client('app'))).toEqual({ active: false });
    stored.set(id!, entry);
    clock.advance(301_000);
    expect(await service.introspect(issued.token, undefined, client('app'))).toEqual({ active: false });
  });

  it('is revoked only by the client it was issued to, and renewed once', async () => {
    const issued = await service.clientCredentials(client('app'), {
      requestedTokenType: TOKEN_TYPE_SAML2,
      renewable: true,
    });
    expect(await code(service.revoke(client('rs'), issued.token))).toMatch(/ERR_UNAUTHORIZED_CLIENT/);
    const renewed = await service.renew(client('app'), issued.token);
    expect(renewed.tokenType).toBe(TOKEN_TYPE_SAML2);
    expect(renewed.token.startsWith('<')).toBe(true);
    expect(await service.introspect(issued.token, undefined, client('app'))).toEqual({ active: false });
    expect(await service.introspect(renewed.token, undefined, client('app'))).toMatchObject({
      active: true,
      renewable: true,
    });
    expect(await code(service.renew(client('app'), issued.token))).toMatch(
      /ERR_INVALID_GRANT: the token was renewed already/,
    );
    const plain = await service.clientCredentials(client('app'), { requestedTokenType: TOKEN_TYPE_SAML2 });
    expect(await code(service.renew(client('app'), plain.token))).toMatch(/not issued as renewable/);
    await service.revoke(client('app'), plain.token);
    expect(await service.introspect(plain.token, undefined, client('app'))).toEqual({ active: false });
  });

  it('exchanges an access token for an assertion and an assertion for an access token, the chain kept', async () => {
    const access = await service.clientCredentials(client('app'), {});
    const assertion = await service.exchange(client('app'), {
      subjectToken: access.token,
      subjectTokenType: AT,
      requestedTokenType: TOKEN_TYPE_SAML2,
    });
    const back = await service.exchange(client('app'), {
      subjectToken: assertion.token,
      subjectTokenType: 'urn:ietf:params:oauth:token-type:saml2',
    });
    expect(decodeJwt(back.token)).toMatchObject({ sub: 'app', chain: { jti: [assertion.tokenId, access.tokenId] } });
    await service.revoke(client('app'), assertion.token);
    expect(await service.introspect(back.token, undefined, client('app'))).toEqual({ active: false });
    expect(
      await code(
        service.exchange(client('plain'), { subjectToken: assertion.token, subjectTokenType: TOKEN_TYPE_SAML2 }),
      ),
    ).toMatch(/ERR_/);
  });

  it('takes a delegation server’s own assertion of a user once, for this realm, short-lived', async () => {
    const exchanged = await service.exchange(client('server'), {
      subjectToken: serverAssertion('_u1'),
      subjectTokenType: TOKEN_TYPE_SAML2,
    });
    expect(decodeJwt(exchanged.token)).toMatchObject({
      sub: 'alice',
      act: { sub: 'server' },
      client_id: 'server',
      email: 'alice@example.test',
    });
    expect(
      await code(
        service.exchange(client('server'), {
          subjectToken: serverAssertion('_u1'),
          subjectTokenType: TOKEN_TYPE_SAML2,
        }),
      ),
    ).toMatch(/replayed ID/);
    expect(
      await code(
        service.exchange(client('server'), {
          subjectToken: serverAssertion('_u2', { audience: 'https://elsewhere' }),
          subjectTokenType: TOKEN_TYPE_SAML2,
        }),
      ),
    ).toMatch(/ERR_INVALID_GRANT.*audience/);
    expect(
      await code(
        service.exchange(client('server'), {
          subjectToken: serverAssertion('_u3', { lifetimeS: 3600 }),
          subjectTokenType: TOKEN_TYPE_SAML2,
        }),
      ),
    ).toMatch(/lives longer/);
    expect(
      await code(
        service.exchange(client('server'), {
          subjectToken: serverAssertion('_u4', { user: 'server' }),
          subjectTokenType: TOKEN_TYPE_SAML2,
        }),
      ),
    ).toMatch(/name a user/);
    const forged = signAssertion(
      buildAssertion({
        id: '_u5',
        issuer: 'server',
        issueInstant: Math.floor(clock.now() / 1000),
        subject: { nameId: 'alice' },
        notOnOrAfter: Math.floor(clock.now() / 1000) + 60,
        notBefore: Math.floor(clock.now() / 1000),
        audiences: [ISSUER],
        attributes: {},
        confirmation: { method: 'bearer' },
      }),
      { kid: 'server-1', alg: 'RS256', key: realmKey.privateKey },
    );
    expect(
      await code(service.exchange(client('server'), { subjectToken: forged, subjectTokenType: TOKEN_TYPE_SAML2 })),
    ).toMatch(/ERR_INVALID_GRANT.*signature/);
    // a client without delegation may not assert users, in SAML as in JWT
    expect(
      await code(
        service.exchange(client('plain'), {
          subjectToken: serverAssertion('_u6').replaceAll('>server<', '>plain<'),
          subjectTokenType: TOKEN_TYPE_SAML2,
        }),
      ),
    ).toMatch(/ERR_UNAUTHORIZED_CLIENT|ERR_INVALID_GRANT/);
  });

  it('confirms holder-of-key with the requester’s public key, never for an access token, and never renews or exchanges it', async () => {
    const holder = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = (await exportJWK(holder.publicKey)) as JsonWebKey;
    const hok = await service.clientCredentials(client('app'), {
      requestedTokenType: TOKEN_TYPE_SAML2,
      renewable: true,
      keyRequirements: { confirmationKey: jwk },
    });
    expect(hok.token).toContain('urn:oasis:names:tc:SAML:2.0:cm:holder-of-key');
    expect(await service.introspect(hok.token, undefined, client('app'))).toMatchObject({
      active: true,
      token_type: 'holder-of-key',
    });
    expect(await code(service.renew(client('app'), hok.token))).toMatch(/holder-of-key/);
    expect(
      await code(service.exchange(client('app'), { subjectToken: hok.token, subjectTokenType: TOKEN_TYPE_SAML2 })),
    ).toMatch(/bound to a key/);
    expect(await code(service.clientCredentials(client('app'), { keyRequirements: { confirmationKey: jwk } }))).toMatch(
      /only a SAML assertion/,
    );
  });

  it('refuses an EdDSA realm before it records anything', async () => {
    const ed = generateKeyPairSync('ed25519');
    const edService = serviceWith('EdDSA', ed.privateKey, await exportJWK(ed.publicKey));
    const before = stored.size;
    expect(await code(edService.clientCredentials(client('app'), { requestedTokenType: TOKEN_TYPE_SAML2 }))).toMatch(
      /ERR_UNSUPPORTED_TOKEN_TYPE: SAML assertions need an RS256 or ES256/,
    );
    expect(stored.size).toBe(before);
  });

  it('refuses, before retiring the old assertion, a renewal the realm cannot issue now', async () => {
    const issued = await service.clientCredentials(client('app'), {
      requestedTokenType: TOKEN_TYPE_SAML2,
      renewable: true,
    });
    signingOverride = { kid: 'k2', alg: 'EdDSA', key: generateKeyPairSync('ed25519').privateKey };
    try {
      expect(await code(service.renew(client('app'), issued.token))).toMatch(/ERR_UNSUPPORTED_TOKEN_TYPE/);
    } finally {
      signingOverride = undefined;
    }
    expect(await service.introspect(issued.token, undefined, client('app'))).toMatchObject({ active: true });
    expect((await service.renew(client('app'), issued.token)).token.startsWith('<')).toBe(true);
  });

  it('answers a renewal the token store cannot read as unavailable, never as a bad grant', async () => {
    const issued = await service.clientCredentials(client('app'), {
      requestedTokenType: TOKEN_TYPE_SAML2,
      renewable: true,
    });
    const get = store.get;
    (store as { get: TokenStore['get'] }).get = async () => {
      throw new KeymeshError('ERR_UNAVAILABLE', 'no majority');
    };
    try {
      expect(await code(service.renew(client('app'), issued.token))).toMatch(/^ERR_UNAVAILABLE/);
    } finally {
      (store as { get: TokenStore['get'] }).get = get;
    }
    expect(await service.introspect(issued.token, undefined, client('app'))).toMatchObject({ active: true });
  });
});

describe('WS-Trust operations on the token service', () => {
  const WSS = 'http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0';
  const WST = 'http://docs.oasis-open.org/ws-sx/ws-trust/200512/';

  it('authenticates a UsernameToken as client_secret_basic, and acts only for the caller it authenticated', async () => {
    const ops = wsTrustOperations(service, '127.0.0.1', () => clock.now());
    await expect(ops.authenticate('app', 'wrong')).rejects.toMatchObject({ code: 'ERR_INVALID_CLIENT' });
    await expect(ops.issue({ clientId: 'app' }, { tokenType: WSS })).rejects.toMatchObject({
      code: 'ERR_INVALID_CLIENT',
    });
    const caller = await ops.authenticate('app', APP_SECRET);
    const issued = await ops.issue(caller, { tokenType: WSS, appliesTo: 'https://a.example' });
    expect(issued.tokenType).toBe(WSS);
    expect(issued.token.kind).toBe('saml2');
    expect(await ops.validate(caller, issued.token)).toEqual({ valid: true });
    await ops.cancel(caller, issued.token);
    expect((await ops.validate(caller, issued.token)).valid).toBe(false);
  });

  it('refuses key requirements the token type cannot honour, instead of issuing a bearer token', async () => {
    const ops = wsTrustOperations(service, '127.0.0.1', () => clock.now());
    const caller = await ops.authenticate('app', APP_SECRET);
    const holder = (await exportJWK(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey)) as JsonWebKey;
    const JWT = 'urn:ietf:params:oauth:token-type:jwt';
    for (const request of [
      { tokenType: WSS, keyType: `${WST}SymmetricKey` },
      { tokenType: WSS, entropy: new Uint8Array(32) },
      { tokenType: JWT, keySize: 256 },
      { tokenType: JWT, keyType: `${WST}PublicKey`, useKey: holder },
      { tokenType: WSS, useKey: holder },
      { tokenType: WSS, keyType: `${WST}PublicKey` },
    ])
      await expect(ops.issue(caller, request), JSON.stringify(Object.keys(request))).rejects.toMatchObject({
        code: 'ERR_INVALID_REQUEST',
      });
    const hok = await ops.issue(caller, { tokenType: WSS, keyType: `${WST}PublicKey`, useKey: holder });
    expect(hok.token.kind === 'saml2' && hok.token.xml).toContain('holder-of-key');
  });
});
