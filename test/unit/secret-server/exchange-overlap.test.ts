/**
 * The exchange overlaps the caller's jti record with the user's token, the secret and its JWE, and still answers
 * only an authenticated caller: nothing is signed or audited before the record succeeded, a replay releases
 * nothing, and an assertion that does not verify starts nothing at all.
 */
import { decodeJwt, exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryAuditLog } from '../../../src/audit/memory-audit-log.js';
import { CLIENT_ASSERTION_TYPE } from '../../../src/config/defaults.js';
import { KeymeshError } from '../../../src/errors.js';
import type { Keyring } from '../../../src/keyring/keyring.js';
import { ClientAssertionVerifier, type RecordOnce } from '../../../src/secret-server/client-assertions.js';
import type { PopKeys } from '../../../src/secret-server/pop-keys.js';
import { SecretServer } from '../../../src/secret-server/secret-server.js';
import type { UserTokenVerifier } from '../../../src/secret-server/user-tokens.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { startJwksServer, type JwksServer } from '../../helpers/jwks-server.js';
import { waitFor } from '../../helpers/wait-for.js';

const OURS = 'https://sts.example';
const RS = 'https://rs-1.example';
const SECRET = new Uint8Array(32).fill(7);
const clock = new FakeClock(Date.UTC(2026, 10, 23, 12));
const now = () => Math.floor(clock.now() / 1000);

let popServer: JwksServer;
let rsKey: CryptoKey;
let signing: CryptoKey;
let popKey: { key: CryptoKey; alg: string; kid: string };
/** What the stubbed parts were asked to do. */
let seen: { users: string[]; secrets: string[]; signed: number };
let audit: MemoryAuditLog;

beforeAll(async () => {
  const sig = await generateKeyPair('ES256', { extractable: true });
  rsKey = sig.privateKey;
  const jwk = { ...(await exportJWK(sig.publicKey)), kid: 'k', alg: 'ES256', use: 'sig' };
  popServer = await startJwksServer(() => ({ keys: [jwk] }));
  signing = (await generateKeyPair('ES256')).privateKey;
  popKey = { key: (await generateKeyPair('ECDH-ES+A256KW')).publicKey, alg: 'ECDH-ES+A256KW', kid: 'enc' };
});
afterAll(() => popServer.close());
beforeEach(() => {
  seen = { users: [], secrets: [], signed: 0 };
  audit = new MemoryAuditLog();
});

function secretServer(recordOnce: RecordOnce): SecretServer {
  const rs = { audience: RS, clientId: 'rs-1', jwksUri: `${popServer.base}/pop`, userTokenAudiences: ['app'] };
  return new SecretServer({
    clients: new ClientAssertionVerifier({
      resourceServers: [rs],
      acceptedAudiences: [OURS],
      clock,
      clockSkewMs: 0,
      recordOnce,
      cooldownMs: 0,
    }),
    users: {
      verify: async (jwt: string) => {
        seen.users.push(jwt);
        if (jwt !== 'good.user.token') throw new KeymeshError('ERR_INVALID_SUBJECT_TOKEN', 'the user token expired');
        return { issuer: 'https://idp.example', subject: 'alice', claims: {} };
      },
    } as unknown as UserTokenVerifier,
    pops: { get: async () => popKey } as unknown as PopKeys,
    keyring: {
      requireActive: () => {
        seen.signed += 1;
        return { alg: 'ES256', kid: 'sig-1', privateKey: async () => signing };
      },
    } as unknown as Keyring,
    clock,
    realm: 'default',
    issuer: OURS,
    getOrCreate: async (key: string) => (seen.secrets.push(key), SECRET),
    audit,
  });
}

function memoryOnce(): RecordOnce & { keys: string[] } {
  const keys: string[] = [];
  return Object.assign(async (key: string) => !keys.includes(key) && keys.push(key) > 0, { keys });
}

function assertion(key: CryptoKey = rsKey) {
  return new SignJWT({ jti: `j-${Math.random()}` })
    .setProtectedHeader({ alg: 'ES256', kid: 'k' })
    .setIssuer('rs-1')
    .setSubject('rs-1')
    .setAudience(OURS)
    .setIssuedAt(now())
    .setExpirationTime(now() + 60)
    .sign(key);
}

const request = async (subjectToken = 'good.user.token', clientAssertion?: string) => ({
  subjectToken,
  audiences: [RS],
  clientAssertionType: CLIENT_ASSERTION_TYPE,
  clientAssertion: clientAssertion ?? (await assertion()),
});

describe('secret server: the jti record overlaps the rest of the exchange', () => {
  it('verifies the user and reads the secret while the jti is recorded, and signs only once it is', async () => {
    let release: (fresh: boolean) => void = () => {};
    const recording = new Promise<boolean>((r) => (release = r));
    const exchanging = secretServer(() => recording).exchange(await request());
    await waitFor(() => seen.secrets.length === 1, { message: 'the secret is read while the jti is recorded' });
    expect(seen.users).toEqual(['good.user.token']);
    expect(seen.signed).toBe(0);
    expect(audit.events).toEqual([]);
    release(true);
    const { token } = await exchanging;
    expect(decodeJwt(token)).toMatchObject({ sub: 'alice', aud: RS });
    expect(seen.signed).toBe(1);
    expect(audit.events).toHaveLength(1);
  });

  it('refuses a replayed assertion and releases nothing, though its work alongside succeeded', async () => {
    const server = secretServer(memoryOnce());
    const replayed = await request();
    await server.exchange(replayed);
    await expect(server.exchange(replayed)).rejects.toMatchObject({
      code: 'ERR_INVALID_CLIENT',
      message: expect.stringContaining('replayed'),
    });
    expect(seen.signed).toBe(1);
    expect(audit.events).toHaveLength(1);
  });

  it('answers a replay with an invalid user token as a failed client authentication', async () => {
    const server = secretServer(memoryOnce());
    const a = await assertion();
    await server.exchange(await request('good.user.token', a));
    await expect(server.exchange(await request('expired.user.token', a))).rejects.toMatchObject({
      code: 'ERR_INVALID_CLIENT',
    });
  });

  it('starts nothing and records no jti for an assertion that does not verify', async () => {
    const once = memoryOnce();
    const forged = await assertion((await generateKeyPair('ES256')).privateKey);
    await expect(secretServer(once).exchange(await request('good.user.token', forged))).rejects.toMatchObject({
      code: 'ERR_INVALID_CLIENT',
    });
    expect(once.keys).toEqual([]);
    expect(seen).toEqual({ users: [], secrets: [], signed: 0 });
  });

  it('creates no secret for a refused user token, and the assertion is spent as before', async () => {
    const once = memoryOnce();
    await expect(secretServer(once).exchange(await request('expired.user.token'))).rejects.toMatchObject({
      code: 'ERR_INVALID_SUBJECT_TOKEN',
    });
    expect(once.keys).toHaveLength(1);
    expect(seen.secrets).toEqual([]);
    expect(seen.signed).toBe(0);
  });

  it("answers the register's failure to record the jti, and releases nothing", async () => {
    const down = async () => {
      throw new KeymeshError('ERR_UNAVAILABLE', 'no quorum');
    };
    await expect(secretServer(down).exchange(await request())).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    expect(seen.signed).toBe(0);
    expect(audit.events).toEqual([]);
  });
});
