import {
  compactDecrypt,
  createLocalJWKSet,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  jwtVerify,
  type CryptoKey,
  type JWK,
} from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { isKeymeshError, KeymeshError } from '../../../src/errors.js';
import { signJws } from '../../../src/tokens/jws-signer.js';
import { DEFAULT_ACCESS_TOKEN_LIFETIME_S, JwtAccessTokenProvider } from '../../../src/tokens/jwt-provider.js';
import {
  ClaimsManager,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
  TOKEN_TYPE_SCT_2005,
  TokenProviders,
  type TokenProviderParameters,
  type TokenStore,
} from '../../../src/tokens/provider.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const ISSUER = 'https://sts.example';
const clock = new FakeClock(Date.UTC(2026, 10, 24, 12));
const nowS = () => Math.floor(clock.now() / 1000);
const revoked = new Set<string>();

let signing: { kid: string; alg: string; key: CryptoKey };
let jwks: { keys: JWK[] };
let provider: JwtAccessTokenProvider;

const noStore: TokenStore = {
  put: () => Promise.reject(new Error('not used')),
  get: () => Promise.reject(new Error('not used')),
};

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  signing = { kid: 'k1', alg: 'ES256', key: pair.privateKey };
  jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
  provider = new JwtAccessTokenProvider({
    verificationKeys: () => ({ version: 1, jwks: () => jwks }),
    issuer: () => ISSUER,
    isRevoked: async (jti) => revoked.has(jti),
    now: () => clock.now(),
    clockSkewS: 0,
  });
});

function params(over: Partial<TokenProviderParameters> = {}): TokenProviderParameters {
  return {
    stsProperties: { issuer: ISSUER, signingKey: async () => signing, maxLifetimeS: 3600, now: () => clock.now() },
    principal: { subject: 'alice', clientId: 'app' },
    requestedClaims: [],
    claimsManager: new ClaimsManager(),
    keyRequirements: {},
    tokenRequirements: { tokenType: TOKEN_TYPE_ACCESS_TOKEN },
    appliesTo: 'https://api.example',
    additionalProperties: {},
    tokenStore: noStore,
    realm: 'default',
    ...over,
  };
}

describe('JwtAccessTokenProvider', () => {
  it('issues an RFC 9068 access token that jose verifies against the realm key set', async () => {
    const issued = await provider.createToken(
      params({ tokenRequirements: { tokenType: TOKEN_TYPE_ACCESS_TOKEN, scope: ['read', 'write'] } }),
    );
    expect(decodeProtectedHeader(issued.token)).toEqual({ alg: 'ES256', kid: 'k1', typ: 'at+jwt' });
    const { payload } = await jwtVerify(issued.token, createLocalJWKSet(jwks), {
      issuer: ISSUER,
      audience: 'https://api.example',
      typ: 'at+jwt',
      currentDate: new Date(clock.now()),
    });
    expect(payload).toMatchObject({
      sub: 'alice',
      client_id: 'app',
      scope: 'read write',
      jti: issued.tokenId,
      iat: nowS(),
      exp: nowS() + DEFAULT_ACCESS_TOKEN_LIFETIME_S,
    });
    expect(issued).toMatchObject({
      lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME_S,
      computedKey: false,
      attachedReference: { identifier: issued.tokenId },
    });
  });

  it('caps the lifetime at the realm maximum and at notAfter, and refuses when notAfter has passed', async () => {
    expect(
      (await provider.createToken(params({ tokenRequirements: { tokenType: TOKEN_TYPE_JWT, lifetimeS: 99_999 } })))
        .lifetime,
    ).toBe(3600);
    expect(
      (await provider.createToken(params({ tokenRequirements: { tokenType: TOKEN_TYPE_JWT, notAfter: nowS() + 42 } })))
        .lifetime,
    ).toBe(42);
    const err = await provider
      .createToken(params({ tokenRequirements: { tokenType: TOKEN_TYPE_JWT, notAfter: nowS() } }))
      .catch((e: unknown) => e);
    expect(isKeymeshError(err) && err.code).toBe('ERR_INVALID_GRANT');
  });

  it('adds act, cnf and handler claims, but a handler cannot override a reserved claim', async () => {
    const manager = new ClaimsManager([
      { name: 'static', claims: () => ({ department: 'ops', sub: 'mallory', exp: 1 }) },
      { name: 'copied', claims: (p) => ({ ...p.principal.claims }) },
    ]);
    const issued = await provider.createToken(
      params({
        claimsManager: manager,
        principal: {
          subject: 'alice',
          clientId: 'server-1',
          actor: { sub: 'server-1', act: { sub: 'gateway' } },
          claims: { email: 'alice@example' },
        },
        keyRequirements: { confirmationJkt: 'thumb' },
      }),
    );
    const payload = (await provider.verify(issued.token, 'default')) as Record<string, unknown>;
    expect(payload).toMatchObject({
      sub: 'alice',
      department: 'ops',
      email: 'alice@example',
      act: { sub: 'server-1', act: { sub: 'gateway' } },
      cnf: { jkt: 'thumb' },
    });
    expect(payload['exp']).toBe(nowS() + DEFAULT_ACCESS_TOKEN_LIFETIME_S);
  });

  it('encrypts the signed token to the recipient POP key when asked', async () => {
    const pop = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
    const issued = await provider.createToken(
      params({ encryptionProperties: { key: pop.publicKey, alg: 'ECDH-ES+A256KW', kid: 'pop1' } }),
    );
    expect(decodeProtectedHeader(issued.token)).toMatchObject({
      alg: 'ECDH-ES+A256KW',
      enc: 'A256GCM',
      cty: 'JWT',
      kid: 'pop1',
    });
    const inner = new TextDecoder().decode((await compactDecrypt(issued.token, pop.privateKey)).plaintext);
    expect((await provider.verify(inner, 'default')).sub).toBe('alice');
  });

  it('never answers inactive for a valid token because the revocation lookup failed: the failure is the answer', async () => {
    const issued = await provider.createToken(params());
    const unsure = new JwtAccessTokenProvider({
      verificationKeys: () => ({ version: 1, jwks: () => jwks }),
      issuer: () => ISSUER,
      now: () => clock.now(),
      clockSkewS: 0,
      isRevoked: async () => {
        throw new KeymeshError('ERR_UNAVAILABLE', 'no majority');
      },
    });
    await expect(unsure.validateToken(issued.token, TOKEN_TYPE_ACCESS_TOKEN, 'default')).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
    });
  });

  it('introspects: active with its claims, inactive when revoked, expired, tampered or from another key', async () => {
    const issued = await provider.createToken(params());
    expect(await provider.validateToken(issued.token, TOKEN_TYPE_ACCESS_TOKEN, 'default')).toMatchObject({
      active: true,
      claims: { sub: 'alice', token_type: 'Bearer' },
    });
    const [h, p, s] = issued.token.split('.');
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), sub: 'mallory' })).toString('base64url')}.${s}`;
    expect((await provider.validateToken(tampered, TOKEN_TYPE_ACCESS_TOKEN, 'default')).active).toBe(false);
    const other = await generateKeyPair('ES256');
    const forged = signJws(
      { iss: ISSUER, sub: 'alice', client_id: 'app', iat: nowS(), exp: nowS() + 60, jti: 'x' },
      { kid: 'k1', alg: 'ES256', key: other.privateKey },
      'at+jwt',
    );
    expect((await provider.validateToken(forged, TOKEN_TYPE_ACCESS_TOKEN, 'default')).active).toBe(false);
    revoked.add(issued.tokenId);
    expect((await provider.validateToken(issued.token, TOKEN_TYPE_ACCESS_TOKEN, 'default')).active).toBe(false);
    const later = await provider.createToken(
      params({ tokenRequirements: { tokenType: TOKEN_TYPE_JWT, lifetimeS: 10 } }),
    );
    clock.advance(11_000);
    expect((await provider.validateToken(later.token, TOKEN_TYPE_ACCESS_TOKEN, 'default')).active).toBe(false);
  });

  it('signs with node:crypto in a form jose verifies, for every signing algorithm keymesh offers', async () => {
    for (const alg of ['ES256', 'EdDSA', 'RS256'] as const) {
      const pair = await generateKeyPair(alg, { extractable: true });
      const token = signJws({ sub: 'x' }, { kid: 'k', alg, key: pair.privateKey }, 'JWT');
      const { payload } = await jwtVerify(token, pair.publicKey);
      expect(payload.sub).toBe('x');
    }
  });
});

describe('TokenProviders', () => {
  it('finds the provider of a type and names a type nobody handles', () => {
    const providers = new TokenProviders().register(provider);
    expect(providers.provider(TOKEN_TYPE_JWT, 'default')).toBe(provider);
    expect(providers.validator(TOKEN_TYPE_ACCESS_TOKEN, 'default')).toBe(provider);
    expect(() => providers.provider(TOKEN_TYPE_SCT_2005, 'default')).toThrow(
      /no provider of this realm issues the requested token type/,
    );
  });
});
