import { exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KeymeshError } from '../../../src/errors.js';
import { CappedFetcher, FetchFailure } from '../../../src/net/capped-fetch.js';
import { remoteKeySet } from '../../../src/net/remote-key-set.js';
import { startServer, type TestServer } from './servers.js';

let key: { privateKey: CryptoKey; publicKey: CryptoKey };
let jwk: JWK;
beforeAll(async () => {
  key = await generateKeyPair('ES256', { extractable: true });
  jwk = { ...(await exportJWK(key.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
});

const servers: TestServer[] = [];
const serveJson = async (body: () => unknown) => {
  const s = await startServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body()));
  });
  servers.push(s);
  return s;
};
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const token = (kid = 'k1') =>
  new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'ES256', kid }).setIssuer('idp').sign(key.privateKey);

describe('remote key set', () => {
  it("verifies through the capped fetcher and keeps jose's cache: one fetch for many verifications", async () => {
    const s = await serveJson(() => ({ keys: [jwk] }));
    const keys = remoteKeySet(`${s.base}/jwks`, { fetcher: new CappedFetcher() });
    for (let i = 0; i < 3; i++)
      await expect(jwtVerify(await token(), keys)).resolves.toMatchObject({ payload: { sub: 'alice' } });
    expect(s.requests()).toBe(1);
    await expect(jwtVerify(await token('unknown'), keys)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    expect(s.requests()).toBe(1); // within the cooldown an unknown kid does not fetch again
  });

  it("refuses a key set larger than the fetcher's limit with the caller's code and a message that names nothing", async () => {
    const padding = Array.from({ length: 1_000 }, (_, i) => ({ ...jwk, kid: `pad-${i}` }));
    const s = await serveJson(() => ({ keys: [jwk, ...padding] }));
    const url = `${s.base}/jwks`;
    const err = await jwtVerify(
      await token(),
      remoteKeySet(url, { code: 'ERR_POP_UNAVAILABLE', message: 'the POP could not be fetched' }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeymeshError);
    expect(err).toMatchObject({ code: 'ERR_POP_UNAVAILABLE', message: 'the POP could not be fetched' });
    expect((err as KeymeshError).cause).toBeInstanceOf(FetchFailure);
    expect((err as KeymeshError).cause).toMatchObject({ url, reason: expect.stringContaining('limit') });
  });

  it('holds a failed fetch for a while: a flood of lookups while the key set is down fetches it once', async () => {
    let up = false;
    const s = await startServer((_req, res) => {
      if (!up) return void res.writeHead(503).end();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    servers.push(s);
    let t = 0;
    const keys = remoteKeySet(`${s.base}/jwks`, { fetcher: new CappedFetcher(), failureHoldMs: 1_000, now: () => t });
    for (let i = 0; i < 20; i++)
      await expect(jwtVerify(await token(), keys)).rejects.toMatchObject({ code: 'ERR_IDP_UNAVAILABLE' });
    expect(s.requests()).toBe(1);
    up = true;
    t = 1_001;
    await expect(jwtVerify(await token(), keys)).resolves.toMatchObject({ payload: { sub: 'alice' } });
    expect(s.requests()).toBe(2);
  });

  it('does not follow a redirect to another key set', async () => {
    const target = await serveJson(() => ({ keys: [jwk] }));
    const redirector = await startServer((_req, res) => {
      res.writeHead(301, { location: `${target.base}/jwks` });
      res.end();
    });
    servers.push(redirector);
    await expect(jwtVerify(await token(), remoteKeySet(`${redirector.base}/jwks`))).rejects.toMatchObject({
      code: 'ERR_IDP_UNAVAILABLE',
      message: 'the key set could not be fetched',
    });
    expect(target.requests()).toBe(0);
  });
});
