/**
 * The token-rule wiring (`src/node/token-services.ts`), on its own: each realm sees only its own clients and signs
 * with its own keys under its own issuer, and every register record it makes that can expire carries its expiry.
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { CappedFetcher } from '../../../src/net/capped-fetch.js';
import { createTokenService, type SharedParts } from '../../../src/node/token-services.js';
import { expiryOf, isExpiringKey, withExpiry, withoutExpiry } from '../../../src/register/expiring.js';
import { recordOnceWith } from '../../../src/secret-server/client-assertions.js';
import { PopKeys } from '../../../src/secret-server/pop-keys.js';
import { AuthThrottle } from '../../../src/tokens/auth-throttle.js';
import { generateClientSecret } from '../../../src/tokens/client-secrets.js';
import { Revocations } from '../../../src/tokens/revocations.js';
import { SlowHashPool } from '../../../src/tokens/slow-hash.js';
import { MINUTE, makeKeyring, TEST_REALMS } from '../../helpers/keyring.js';

/** A one-node register in memory that checks what the real one checks about expiries, and keeps what it chose. */
class MemoryRegister {
  readonly values = new Map<string, Uint8Array>();

  async getOrCreate(key: string, candidate: Uint8Array, options: { expiresAt?: number } = {}) {
    if (isExpiringKey(key) !== (options.expiresAt !== undefined)) throw new Error(`expiry misplaced on ${key}`);
    if (!this.values.has(key))
      this.values.set(key, options.expiresAt === undefined ? candidate : withExpiry(options.expiresAt, candidate));
    return { value: withoutExpiry(this.values.get(key)!) };
  }

  async read(key: string) {
    const value = this.values.get(key);
    return { value: value && withoutExpiry(value) };
  }
}

const pools: SlowHashPool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.stop()));
});

async function setup() {
  const { secret, secretHash } = generateClientSecret();
  const realms = {
    default: { ...TEST_REALMS.default, issuer: 'https://default.example' },
    partners: { ...TEST_REALMS.default, issuer: 'https://partners.example' },
  };
  const raw = {
    jwks: { maxAgeMs: 5 * MINUTE },
    realms,
    clients: [
      {
        clientId: 'app',
        secretHash,
        grants: ['client_credentials'],
        audiences: ['https://api.example'],
        renewable: true,
      },
      {
        clientId: 'partner',
        secretHash,
        grants: ['client_credentials'],
        audiences: ['https://api.example'],
        realms: ['partners'],
      },
    ],
  };
  const { clock, config, keyring, rotation, jwks } = await makeKeyring({ raw });
  await rotation.check();
  const register = new MemoryRegister();
  const getOrCreate = async (key: string, candidate: Uint8Array) => (await register.getOrCreate(key, candidate)).value;
  const getOrCreateExpiring = async (key: string, candidate: Uint8Array, expiresAt: number) =>
    (await register.getOrCreate(key, candidate, { expiresAt })).value;
  const slowHash = new SlowHashPool();
  pools.push(slowHash);
  await slowHash.start();
  const fetcher = new CappedFetcher();
  const shared: SharedParts = {
    register,
    keyring,
    clock,
    getOrCreate,
    getOrCreateExpiring,
    recordOnce: recordOnceWith(getOrCreateExpiring),
    revocations: new Revocations({ register, clock, publish: () => undefined }),
    jwks,
    pops: new PopKeys(clock, { fetcher }),
    fetcher,
    slowHash,
    throttle: new AuthThrottle(),
    sealer: new Sealer(ManagementKey.parse(ManagementKey.generate(), 't'), 'node-test'),
  };
  const basic = (id: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  return { config, shared, register, clock, basic };
}

describe('the token-rule wiring', () => {
  it('gives each realm only its own clients, keys and issuer', async () => {
    const { config, shared, basic } = await setup();
    const realmDefault = createTokenService(config, shared, 'default');
    const partners = createTokenService(config, shared, 'partners');
    const app = await realmDefault.clients.authenticate(basic('app'), {});
    await expect(partners.clients.authenticate(basic('app'), {})).rejects.toMatchObject({ code: 'ERR_INVALID_CLIENT' });
    await expect(realmDefault.clients.authenticate(basic('partner'), {})).rejects.toMatchObject({
      code: 'ERR_INVALID_CLIENT',
    });
    const partner = await partners.clients.authenticate(basic('partner'), {});

    const fromDefault = await realmDefault.clientCredentials(app, { audiences: ['https://api.example'] });
    const fromPartners = await partners.clientCredentials(partner, { audiences: ['https://api.example'] });
    expect(decodeJwt(fromDefault.token)).toMatchObject({ iss: 'https://default.example', client_id: 'app' });
    expect(decodeJwt(fromPartners.token)).toMatchObject({ iss: 'https://partners.example', client_id: 'partner' });
    const kids = (realm: string) => shared.keyring.published(realm, 'sig').map((k) => k.kid);
    expect(kids('default')).toContain(decodeProtectedHeader(fromDefault.token).kid);
    expect(kids('partners')).toContain(decodeProtectedHeader(fromPartners.token).kid);
    expect(kids('default')).not.toContain(decodeProtectedHeader(fromPartners.token).kid);
  });

  it("writes renewal claims and revocations with the token's expiry, and no expiry on what must last", async () => {
    const { config, shared, register, basic } = await setup();
    const service = createTokenService(config, shared, 'default');
    const app = await service.clients.authenticate(basic('app'), {});
    const issued = await service.clientCredentials(app, { audiences: ['https://api.example'], renewable: true });
    const { exp, jti } = decodeJwt(issued.token);
    await service.renew(app, issued.token);
    expect(expiryOf(register.values.get(`renewed/${jti}`)!)).toBe(exp);
    expect(expiryOf(register.values.get(`revoked/${jti}`)!)).toBe(exp);
    for (const [key, value] of register.values)
      expect(isExpiringKey(key) === (expiryOf(value) !== undefined), key).toBe(true);
  });
});
