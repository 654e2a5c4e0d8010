import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.js';
import type { KeymeshError } from '../../../src/errors.js';
import { UserTokenVerifier } from '../../../src/secret-server/user-tokens.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { startJwksServer, type JwksServer } from '../../helpers/jwks-server.js';

let server: JwksServer;
let jwks: { keys: JWK[] } = { keys: [] };
let base = '';
let signing: { privateKey: CryptoKey; publicKey: CryptoKey; kid: string };

async function makeKey(kid: string) {
  const pair = await generateKeyPair('ES256', { extractable: true });
  return { ...pair, kid };
}

beforeAll(async () => {
  signing = await makeKey('k1');
  jwks = { keys: [{ ...(await exportJWK(signing.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
  server = await startJwksServer(() => jwks);
  base = server.base;
});
afterAll(() => server.close());

const ISSUER = 'https://idp.example';
const clock = new FakeClock(Date.UTC(2026, 10, 23, 12));
const now = () => Math.floor(clock.now() / 1000);

function verifier(extra: Array<{ issuer: string; jwksUri: string; algorithms: string[] }> = []) {
  return new UserTokenVerifier({
    issuers: [
      { issuer: ISSUER, jwksUri: `${base}/jwks`, algorithms: ['ES256'], audiences: ['rs-1', 'rs-2'] },
      ...extra,
    ],
    clock,
    clockSkewMs: 60_000,
    cooldownMs: 0,
  });
}

function token(claims: Record<string, unknown> = {}, key = signing, header: Record<string, unknown> = {}) {
  return new SignJWT({ sub: 'alice', ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, ...header })
    .setIssuer((claims['iss'] as string | undefined) ?? ISSUER)
    .setAudience((claims['aud'] as string | undefined) ?? 'rs-1')
    .setIssuedAt(now())
    .setExpirationTime((claims['exp'] as number | undefined) ?? now() + 300)
    .sign(key.privateKey);
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

describe('user tokens from trusted IDPs', () => {
  it('accepts a token of a trusted issuer for an audience the caller may present', async () => {
    const user = await verifier().verify(await token(), ['rs-1']);
    expect(user).toMatchObject({ issuer: ISSUER, subject: 'alice' });
  });

  it('refuses untrusted issuers, other audiences, expired and not-yet-valid tokens', async () => {
    const v = verifier();
    await expect(v.verify(await token({ iss: 'https://evil.example' }), ['rs-1'])).rejects.toMatchObject({
      code: 'ERR_UNTRUSTED_ISSUER',
    });
    await expect(v.verify(await token({ aud: 'rs-9' }), ['rs-1'])).rejects.toMatchObject({
      code: 'ERR_INVALID_SUBJECT_TOKEN',
    });
    await expect(v.verify(await token(), ['rs-9'])).rejects.toMatchObject({ code: 'ERR_INVALID_SUBJECT_TOKEN' });
    await expect(v.verify(await token({ exp: now() - 120 }), ['rs-1'])).rejects.toMatchObject({
      code: 'ERR_INVALID_SUBJECT_TOKEN',
      message: expect.stringContaining('expired'),
    });
    await expect(v.verify(await token({ exp: now() - 30 }), ['rs-1'])).resolves.toMatchObject({ subject: 'alice' }); // within the skew
    await expect(v.verify(await token({ nbf: now() + 600 }), ['rs-1'])).rejects.toMatchObject({
      code: 'ERR_INVALID_SUBJECT_TOKEN',
    });
  });

  it('refuses tampered, unsigned, wrong-key and HMAC-with-the-public-key tokens', async () => {
    const v = verifier();
    const [h, , s] = (await token()).split('.');
    await expect(
      v.verify(`${h}.${b64({ sub: 'mallory', iss: ISSUER, aud: 'rs-1', exp: now() + 300 })}.${s}`, ['rs-1']),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_SUBJECT_TOKEN' });
    const none = `${b64({ alg: 'none' })}.${b64({ sub: 'alice', iss: ISSUER, aud: 'rs-1', exp: now() + 300 })}.`;
    await expect(v.verify(none, ['rs-1'])).rejects.toMatchObject({
      code: 'ERR_INVALID_SUBJECT_TOKEN',
      message: expect.stringContaining("the user token's alg is not one its issuer signs with"),
    });
    const impostor = await makeKey('k1');
    await expect(v.verify(await token({}, impostor), ['rs-1'])).rejects.toMatchObject({
      code: 'ERR_INVALID_SUBJECT_TOKEN',
    });
    const publicBytes = new TextEncoder().encode(JSON.stringify(jwks.keys[0]));
    const hmac = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setIssuer(ISSUER)
      .setAudience('rs-1')
      .setExpirationTime(now() + 300)
      .sign(publicBytes);
    await expect(v.verify(hmac, ['rs-1'])).rejects.toMatchObject({
      code: 'ERR_INVALID_SUBJECT_TOKEN',
      message: expect.stringContaining("the user token's alg is not one its issuer signs with"),
    });
    await expect(v.verify('not-a-jwt', ['rs-1'])).rejects.toMatchObject({ code: 'ERR_INVALID_SUBJECT_TOKEN' });
  });

  it('refuses a JWT of the IDP explicitly typed as something that is never a user token, and takes ID and access tokens', async () => {
    for (const typ of ['dpop+jwt', 'logout+jwt', 'application/client-authentication+jwt', 'secevent+jwt']) {
      await expect(verifier().verify(await token({}, signing, { typ }), ['rs-1'])).rejects.toMatchObject({
        code: 'ERR_INVALID_SUBJECT_TOKEN',
        message: 'the user token is a JWT of another kind (typ)',
      });
    }
    for (const typ of ['JWT', 'at+jwt'])
      expect((await verifier().verify(await token({}, signing, { typ }), ['rs-1'])).subject).toBe('alice');
  });

  it('fetches the key set again when a token names a kid it has not seen (after the IDP rotated)', async () => {
    const v = verifier();
    await v.verify(await token(), ['rs-1']);
    const before = server.fetches();
    const next = await makeKey('k2');
    jwks = { keys: [...jwks.keys, { ...(await exportJWK(next.publicKey)), kid: 'k2', alg: 'ES256', use: 'sig' }] };
    await expect(v.verify(await token({}, next), ['rs-1'])).resolves.toMatchObject({ subject: 'alice' });
    expect(server.fetches()).toBe(before + 1);
    await v.verify(await token({}, next), ['rs-1']);
    expect(server.fetches()).toBe(before + 1); // cached
  });

  it('fails only the requests of an IDP that cannot be reached', async () => {
    const v = verifier([{ issuer: 'https://down.example', jwksUri: `${base}/down`, algorithms: ['ES256'] }]);
    await expect(v.verify(await token({ iss: 'https://down.example' }), ['rs-1'])).rejects.toMatchObject({
      code: 'ERR_IDP_UNAVAILABLE',
    });
    const gone = new UserTokenVerifier({
      issuers: [{ issuer: ISSUER, jwksUri: 'http://127.0.0.1:1/jwks', algorithms: ['ES256'] }],
      clock,
      clockSkewMs: 0,
    });
    await expect(gone.verify(await token(), ['rs-1'])).rejects.toMatchObject({ code: 'ERR_IDP_UNAVAILABLE' });
    await expect(v.verify(await token(), ['rs-1'])).resolves.toMatchObject({ subject: 'alice' });
  });
});

describe('key sets of trusted IDPs, fetched capped', () => {
  it('refuses a key set larger than the fetch limit', async () => {
    const padding = Array.from({ length: 1_000 }, (_, i) => ({ ...jwks.keys[0]!, kid: `pad-${i}` }));
    const huge = await startJwksServer(() => ({ keys: [...jwks.keys, ...padding] }));
    try {
      const v = new UserTokenVerifier({
        issuers: [{ issuer: ISSUER, jwksUri: `${huge.base}/jwks`, algorithms: ['ES256'] }],
        clock,
        clockSkewMs: 0,
      });
      await expect(v.verify(await token(), ['rs-1'])).rejects.toMatchObject({
        code: 'ERR_IDP_UNAVAILABLE',
        cause: { reason: expect.stringContaining('limit') },
      });
    } finally {
      await huge.close();
    }
  });

  it("repeats neither a library's message nor what the IDP answered; the cause has the detail", async () => {
    const v = verifier([{ issuer: 'https://down.example', jwksUri: `${base}/down`, algorithms: ['ES256'] }]);
    const down = await v.verify(await token({ iss: 'https://down.example' }), ['rs-1']).then(
      () => undefined,
      (e: unknown) => e as KeymeshError,
    );
    expect(down).toMatchObject({
      code: 'ERR_IDP_UNAVAILABLE',
      message: 'the key set of https://down.example could not be fetched',
    });
    expect(down?.cause).toMatchObject({ url: `${base}/down`, status: 503 });
    // jose refuses an unknown crit extension with a message of its own, which must not reach the caller
    const crit = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', crit: ['urn:example:ext'], 'urn:example:ext': 1 })
      .setIssuer(ISSUER)
      .setAudience('rs-1')
      .setExpirationTime(now() + 300)
      .sign(signing.privateKey, { crit: { 'urn:example:ext': true } });
    const refused = await v.verify(crit, ['rs-1']).then(
      () => undefined,
      (e: unknown) => e as KeymeshError,
    );
    expect(refused).toMatchObject({ code: 'ERR_INVALID_SUBJECT_TOKEN', message: 'the user token was refused' });
  });
});

describe('trustedIssuers config', () => {
  const load = (trustedIssuers: unknown) => () => loadConfig({ raw: { trustedIssuers }, env: {} });
  it('wants https key sets except on loopback, one entry per issuer, and asymmetric algorithms', () => {
    expect(load([{ issuer: 'a', jwksUri: 'http://idp.example/jwks' }])).toThrow(/trustedIssuers\.0\.jwksUri/);
    expect(
      load([
        { issuer: 'a', jwksUri: 'https://idp.example/jwks' },
        { issuer: 'a', jwksUri: 'https://idp.example/jwks' },
      ]),
    ).toThrow(/duplicate issuer/);
    expect(load([{ issuer: 'a', jwksUri: 'https://idp.example/jwks', algorithms: ['HS256'] }])).toThrow(
      /trustedIssuers\.0\.algorithms/,
    );
    expect(load([{ issuer: 'a', jwksUri: 'http://127.0.0.1:9/jwks' }])).not.toThrow();
  });
});
