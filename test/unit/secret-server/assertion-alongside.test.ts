/**
 * Work run alongside the jti record: it starts only for an assertion that verified, overlaps the record on the
 * register, and the assertion's own failure (a replay, the register's error) always wins over the work's.
 */
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_ASSERTION_TYPE } from '../../../src/config/defaults.js';
import { KeymeshError } from '../../../src/errors.js';
import { ClientAssertionVerifier, type RecordOnce } from '../../../src/secret-server/client-assertions.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { startJwksServer, type JwksServer } from '../../helpers/jwks-server.js';
import { waitFor } from '../../helpers/wait-for.js';

const OURS = 'https://dc2.example';
const clock = new FakeClock(Date.UTC(2026, 10, 23, 12));
const now = () => Math.floor(clock.now() / 1000);

let pop: JwksServer;
let rsKey: CryptoKey;

beforeAll(async () => {
  const sig = await generateKeyPair('ES256', { extractable: true });
  rsKey = sig.privateKey;
  const jwk = { ...(await exportJWK(sig.publicKey)), kid: 'k', alg: 'ES256', use: 'sig' };
  pop = await startJwksServer(() => ({ keys: [jwk] }));
});
afterAll(() => pop.close());

/** A register that remembers the keys it was asked to record. */
function memoryOnce(): RecordOnce & { keys: string[] } {
  const keys: string[] = [];
  return Object.assign(async (key: string) => !keys.includes(key) && keys.push(key) > 0, { keys });
}

function verifier(recordOnce: RecordOnce) {
  return new ClientAssertionVerifier({
    resourceServers: [
      { audience: 'https://rs.example', clientId: 'rs-1', jwksUri: `${pop.base}/pop`, userTokenAudiences: ['app'] },
    ],
    acceptedAudiences: [OURS],
    clock,
    clockSkewMs: 0,
    recordOnce,
    cooldownMs: 0,
  });
}

function assertion(o: { key?: CryptoKey; exp?: number; aud?: string } = {}) {
  return new SignJWT({ jti: `j-${Math.random()}` })
    .setProtectedHeader({ alg: 'ES256', kid: 'k' })
    .setIssuer('rs-1')
    .setSubject('rs-1')
    .setAudience(o.aud ?? OURS)
    .setIssuedAt(now())
    .setExpirationTime(o.exp ?? now() + 60)
    .sign(o.key ?? rsKey);
}

describe('work alongside the jti record', () => {
  it('starts once the assertion verified, while its jti is being recorded, and waits for both', async () => {
    let release: (fresh: boolean) => void = () => {};
    const recording = new Promise<boolean>((r) => (release = r));
    let started: string | undefined;
    let settled = false;
    const verifying = verifier(() => recording)
      .verify(CLIENT_ASSERTION_TYPE, await assertion(), async (server) => {
        started = server.clientId;
      })
      .finally(() => (settled = true));
    await waitFor(() => started, { message: 'the work alongside starts before the record settles' });
    expect(started).toBe('rs-1');
    expect(settled).toBe(false);
    release(true);
    await expect(verifying).resolves.toMatchObject({ clientId: 'rs-1' });
  });

  it('never starts the work, nor records a jti, for an assertion that does not verify', async () => {
    const once = memoryOnce();
    const other = await generateKeyPair('ES256');
    let started = 0;
    const alongside = async () => {
      started += 1;
    };
    for (const bad of [
      await assertion({ key: other.privateKey }),
      await assertion({ exp: now() - 120 }),
      await assertion({ aud: 'https://elsewhere.example' }),
    ])
      await expect(verifier(once).verify(CLIENT_ASSERTION_TYPE, bad, alongside)).rejects.toMatchObject({
        code: 'ERR_INVALID_CLIENT',
      });
    expect(started).toBe(0);
    expect(once.keys).toEqual([]);
  });

  it('refuses a replayed assertion even when the work alongside succeeded', async () => {
    const v = verifier(memoryOnce());
    const a = await assertion();
    await v.verify(CLIENT_ASSERTION_TYPE, a, async () => 'done');
    await expect(v.verify(CLIENT_ASSERTION_TYPE, a, async () => 'done')).rejects.toMatchObject({
      code: 'ERR_INVALID_CLIENT',
      message: expect.stringContaining('replayed'),
    });
  });

  it("answers the register's failure before the work's", async () => {
    const down = async () => {
      throw new KeymeshError('ERR_UNAVAILABLE', 'no quorum');
    };
    const refused = async () => {
      throw new KeymeshError('ERR_INVALID_SUBJECT_TOKEN', 'the user token has expired');
    };
    await expect(verifier(down).verify(CLIENT_ASSERTION_TYPE, await assertion(), refused)).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
    });
  });

  it("answers the work's failure once the jti was recorded, and the jti stays used", async () => {
    const once = memoryOnce();
    const v = verifier(once);
    const a = await assertion();
    const refused = () => Promise.reject(new KeymeshError('ERR_INVALID_SUBJECT_TOKEN', 'the user token has expired'));
    await expect(v.verify(CLIENT_ASSERTION_TYPE, a, refused)).rejects.toMatchObject({
      code: 'ERR_INVALID_SUBJECT_TOKEN',
    });
    expect(once.keys).toHaveLength(1);
    await expect(v.verify(CLIENT_ASSERTION_TYPE, a)).rejects.toMatchObject({ code: 'ERR_INVALID_CLIENT' });
  });

  it('turns work that throws at once into the same rejection', async () => {
    const throwing = () => {
      throw new KeymeshError('ERR_UNKNOWN_AUDIENCE', 'an audience is not one this resource server may ask for');
    };
    await expect(
      verifier(memoryOnce()).verify(CLIENT_ASSERTION_TYPE, await assertion(), throwing),
    ).rejects.toMatchObject({ code: 'ERR_UNKNOWN_AUDIENCE' });
  });
});
