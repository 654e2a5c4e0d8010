import { createHash, randomBytes } from 'node:crypto';
import { compactDecrypt, generateKeyPair, type CryptoKey } from 'jose';
import { unpack } from 'msgpackr';
import { beforeAll, describe, expect, it } from 'vitest';
import { COMPUTED_KEY_PSHA1, computedKey } from '../../../src/tokens/p-sha1.js';
import {
  ClaimsManager,
  TOKEN_TYPE_JWT,
  TOKEN_TYPE_SCT_2005,
  TOKEN_TYPE_SCT_200512,
  type KeyRequirements,
  type TokenProviderParameters,
  type TokenRequirements,
  type TokenStore,
  type ValidationCaller,
} from '../../../src/tokens/provider.js';
import { SecurityContextTokenProvider, type SctProviderOptions } from '../../../src/tokens/sct-provider.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const AUDIENCE = 'https://rs.example/service';
const REALM = 'dc2';

/** The token store's in-memory twin: write-once entries that vanish once the clock passes their expiry (seconds). */
class MemoryTokenStore implements TokenStore {
  readonly entries = new Map<string, { value: Uint8Array; expiresAt: number }>();
  constructor(private readonly clock: FakeClock) {}

  async put(id: string, value: Uint8Array, expiresAt: number): Promise<Uint8Array> {
    const existing = await this.get(id);
    if (existing) return existing;
    this.entries.set(id, { value, expiresAt });
    return value;
  }

  async get(id: string): Promise<Uint8Array | undefined> {
    const entry = this.entries.get(id);
    return entry && entry.expiresAt > this.clock.now() / 1000 ? entry.value : undefined;
  }
}

let pop: { publicKey: CryptoKey; privateKey: CryptoKey };
beforeAll(async () => {
  pop = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
});

function setup(options: Partial<SctProviderOptions> = {}) {
  const clock = new FakeClock(Date.UTC(2026, 10, 24, 12));
  const store = new MemoryTokenStore(clock);
  const provider = new SecurityContextTokenProvider({ tokenStore: store, clock, ...options });
  const params = (
    o: { key?: KeyRequirements; token?: Partial<TokenRequirements>; maxLifetimeS?: number; realm?: string } = {},
  ): TokenProviderParameters => ({
    stsProperties: {
      issuer: 'https://sts.example',
      signingKey: () => Promise.reject(new Error('unused')),
      maxLifetimeS: o.maxLifetimeS ?? 3600,
      now: () => clock.now(),
    },
    principal: { subject: 'alice', clientId: 'client-1' },
    requestedClaims: [],
    claimsManager: new ClaimsManager(),
    keyRequirements: o.key ?? {},
    tokenRequirements: { tokenType: TOKEN_TYPE_SCT_200512, ...o.token },
    appliesTo: AUDIENCE,
    additionalProperties: {},
    tokenStore: store,
    realm: o.realm ?? REALM,
  });
  const nowS = () => Math.floor(clock.now() / 1000);
  return { clock, store, provider, params, nowS };
}

const audienceCaller = (): ValidationCaller => ({
  clientId: 'rs-1',
  audiences: [AUDIENCE],
  popKey: async () => ({ key: pop.publicKey, alg: 'ECDH-ES+A256KW', kid: 'pop-1' }),
});
const otherCaller = (): ValidationCaller => ({
  clientId: 'rs-2',
  audiences: ['https://other.example'],
  popKey: async () => ({ key: pop.publicKey, alg: 'ECDH-ES+A256KW' }),
});
const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString('hex');

describe('SecurityContextTokenProvider issuing', () => {
  it('issues a urn:uuid identifier for 300 s by default, referenced by its identifier', async () => {
    const { provider, params, nowS } = setup();
    const r = await provider.createToken(params());
    expect(r.token).toMatch(/^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(r).toMatchObject({
      tokenId: r.token,
      lifetime: 300,
      expiresAt: nowS() + 300,
      keySize: 256,
      computedKey: false,
    });
    expect(r.attachedReference).toEqual({ identifier: r.token, valueType: TOKEN_TYPE_SCT_200512 });
    expect(r.unattachedReference).toEqual(r.attachedReference);
  });

  it('caps the lifetime by the request, the realm maximum and notAfter', async () => {
    const { provider, params, nowS } = setup();
    await expect(provider.createToken(params({ token: { lifetimeS: 60 } }))).resolves.toMatchObject({ lifetime: 60 });
    await expect(provider.createToken(params({ token: { lifetimeS: 9000 } }))).resolves.toMatchObject({
      lifetime: 300,
    });
    await expect(provider.createToken(params({ maxLifetimeS: 100 }))).resolves.toMatchObject({ lifetime: 100 });
    await expect(provider.createToken(params({ token: { notAfter: nowS() + 42 } }))).resolves.toMatchObject({
      lifetime: 42,
      expiresAt: nowS() + 42,
    });
    await expect(provider.createToken(params({ token: { notAfter: nowS() } }))).rejects.toMatchObject({
      code: 'ERR_INVALID_REQUEST',
    });
  });

  it('stores a versioned record under sct/<sha256 of the identifier> that expires with the token', async () => {
    const { provider, params, store } = setup();
    const r = await provider.createToken(params());
    const id = `sct/${createHash('sha256').update(r.token).digest('base64url')}`;
    const entry = store.entries.get(id);
    expect(entry?.expiresAt).toBe(r.expiresAt);
    expect(unpack(entry!.value)).toMatchObject({
      v: 1,
      id: r.token,
      realm: REALM,
      keySize: 256,
      audience: AUDIENCE,
      clientId: 'client-1',
      subject: 'alice',
      expiresAt: r.expiresAt,
      computed: false,
    });
  });

  it('makes the key from server entropy alone when the client sends none, and returns that entropy', async () => {
    const { provider, params } = setup();
    const r = await provider.createToken(params());
    expect(r.entropy).toHaveLength(32);
    const v = await provider.validateToken(r.token, TOKEN_TYPE_SCT_200512, REALM, audienceCaller());
    const { plaintext } = await compactDecrypt(v.keyJwe!, pop.privateKey);
    expect(hex(plaintext)).toBe(hex(r.entropy));
  });

  it('computes P_SHA1(client entropy, server entropy) when the client sends entropy, and the client can too', async () => {
    const { provider, params } = setup();
    const clientEntropy = randomBytes(32);
    const r = await provider.createToken(params({ key: { clientEntropy, computedKeyAlgorithm: COMPUTED_KEY_PSHA1 } }));
    expect(r).toMatchObject({ computedKey: true, keySize: 256 });
    const clientKey = computedKey(clientEntropy, r.entropy!, 256);
    expect(hex(clientKey)).not.toBe(hex(r.entropy));
    const v = await provider.validateToken(r.token, TOKEN_TYPE_SCT_200512, REALM, audienceCaller());
    expect(hex((await compactDecrypt(v.keyJwe!, pop.privateKey)).plaintext)).toBe(hex(clientKey));
  });

  it('treats client entropy without an algorithm as PSHA1', async () => {
    const { provider, params } = setup();
    const r = await provider.createToken(params({ key: { clientEntropy: randomBytes(16), keySize: 128 } }));
    expect(r).toMatchObject({ computedKey: true, keySize: 128 });
  });

  it('returns no entropy when returnEntropy is off', async () => {
    const { provider, params } = setup({ returnEntropy: false });
    const r = await provider.createToken(params({ key: { clientEntropy: randomBytes(32) } }));
    expect(r.entropy).toBeUndefined();
    expect(r).not.toHaveProperty('entropy');
  });

  it.each([128, 256, 512])('accepts a %s-bit key', async (keySize) => {
    const { provider, params } = setup();
    const r = await provider.createToken(params({ key: { keySize } }));
    expect(r).toMatchObject({ keySize });
    expect(r.entropy).toHaveLength(keySize / 8);
  });

  it.each([64, 520, 100])('refuses a %s-bit key, naming the allowed range', async (keySize) => {
    const { provider, params } = setup();
    await expect(provider.createToken(params({ key: { keySize } }))).rejects.toMatchObject({
      name: 'KeymeshError',
      code: 'ERR_INVALID_REQUEST',
      message: expect.stringContaining('multiple of 8 from 128 to 512 bits'),
    });
  });

  it('refuses a misconfigured default key size or lifetime', () => {
    const { store } = setup();
    expect(() => new SecurityContextTokenProvider({ tokenStore: store, keySizeBits: 64 })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    );
    expect(() => new SecurityContextTokenProvider({ tokenStore: store, lifetimeS: 0 })).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    );
  });

  it.each([0, 15, 65])('refuses %s bytes of client entropy', async (size) => {
    const { provider, params } = setup();
    await expect(provider.createToken(params({ key: { clientEntropy: randomBytes(size) } }))).rejects.toMatchObject({
      code: 'ERR_INVALID_REQUEST',
      message: expect.stringContaining('16 to 64 bytes'),
    });
  });

  it('refuses an unknown computed-key algorithm', async () => {
    const { provider, params } = setup();
    const key = {
      clientEntropy: randomBytes(32),
      computedKeyAlgorithm: 'http://schemas.xmlsoap.org/ws/2005/02/trust/CK/PSHA2',
    };
    await expect(provider.createToken(params({ key }))).rejects.toMatchObject({
      code: 'ERR_INVALID_REQUEST',
      message: expect.stringContaining(COMPUTED_KEY_PSHA1),
    });
  });

  it('refuses to issue a type or in a realm it does not serve', async () => {
    const { provider, params } = setup({ realms: ['dc1'] });
    await expect(provider.createToken(params({ realm: REALM }))).rejects.toMatchObject({
      code: 'ERR_UNSUPPORTED_TOKEN_TYPE',
    });
    await expect(
      provider.createToken(params({ realm: 'dc1', token: { tokenType: TOKEN_TYPE_JWT } })),
    ).rejects.toMatchObject({ code: 'ERR_UNSUPPORTED_TOKEN_TYPE' });
  });
});

describe('SecurityContextTokenProvider validation', () => {
  it('hands the registered audience the key as a JWE to its POP key', async () => {
    const { provider, params, nowS } = setup();
    const r = await provider.createToken(params());
    const v = await provider.validateToken(r.token, TOKEN_TYPE_SCT_2005, REALM, audienceCaller());
    expect(v).toMatchObject({
      active: true,
      claims: {
        sub: 'alice',
        client_id: 'client-1',
        aud: AUDIENCE,
        exp: nowS() + 300,
        token_type: TOKEN_TYPE_SCT_2005,
      },
    });
    const { plaintext, protectedHeader } = await compactDecrypt(v.keyJwe!, pop.privateKey);
    expect(protectedHeader).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: 'pop-1' });
    expect(hex(plaintext)).toBe(hex(r.entropy));
  });

  it('tells any other caller only that the token is active', async () => {
    const { provider, params } = setup();
    const r = await provider.createToken(params());
    const entropy = hex(r.entropy);
    for (const caller of [otherCaller(), { ...audienceCaller(), popKey: undefined }]) {
      const v = await provider.validateToken(r.token, TOKEN_TYPE_SCT_200512, REALM, caller);
      expect(v.active).toBe(true);
      expect(v.keyJwe).toBeUndefined();
      expect(JSON.stringify(v)).not.toContain(entropy);
      expect(Object.keys(v.claims ?? {}).sort()).toEqual(['aud', 'client_id', 'exp', 'sub', 'token_type']);
    }
  });

  it('reports an expired token inactive', async () => {
    const { provider, params, clock } = setup();
    const r = await provider.createToken(params());
    clock.advance(299_000);
    await expect(
      provider.validateToken(r.token, TOKEN_TYPE_SCT_200512, REALM, audienceCaller()),
    ).resolves.toMatchObject({ active: true });
    clock.advance(1_000);
    await expect(provider.validateToken(r.token, TOKEN_TYPE_SCT_200512, REALM, audienceCaller())).resolves.toEqual({
      active: false,
    });
  });

  it('reports a token of another realm, an unknown token or another type inactive', async () => {
    const { provider, params } = setup();
    const r = await provider.createToken(params());
    await expect(provider.validateToken(r.token, TOKEN_TYPE_SCT_200512, 'dc9', audienceCaller())).resolves.toEqual({
      active: false,
    });
    await expect(
      provider.validateToken(
        'urn:uuid:00000000-0000-4000-8000-000000000000',
        TOKEN_TYPE_SCT_200512,
        REALM,
        audienceCaller(),
      ),
    ).resolves.toEqual({ active: false });
    await expect(provider.validateToken(r.token, TOKEN_TYPE_JWT, REALM, audienceCaller())).resolves.toEqual({
      active: false,
    });
  });

  it('handles both SCT token types, in the realms it serves, and not JWTs', () => {
    const { provider: all } = setup();
    const { provider: one } = setup({ realms: ['dc1'] });
    for (const type of [TOKEN_TYPE_SCT_2005, TOKEN_TYPE_SCT_200512]) {
      expect(all.canHandleToken(type)).toBe(true);
      expect(all.canHandleToken(type, 'anything')).toBe(true);
      expect(one.canHandleToken(type, 'dc1')).toBe(true);
      expect(one.canHandleToken(type, 'dc2')).toBe(false);
    }
    expect(all.canHandleToken(TOKEN_TYPE_JWT)).toBe(false);
    expect(all.canHandleToken(TOKEN_TYPE_JWT, REALM)).toBe(false);
  });
});
