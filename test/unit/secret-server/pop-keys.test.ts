import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { KeymeshError } from '../../../src/errors.js';
import { CappedFetcher } from '../../../src/net/capped-fetch.js';
import { PopKeys } from '../../../src/secret-server/pop-keys.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import { startServer, type TestServer } from '../net/servers.js';

let enc: JWK;
let sig: JWK;
beforeAll(async () => {
  enc = {
    ...(await exportJWK((await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true })).publicKey)),
    kid: 'e1',
    alg: 'ECDH-ES+A256KW',
    use: 'enc',
  };
  sig = {
    ...(await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey)),
    kid: 's1',
    alg: 'ES256',
    use: 'sig',
  };
});

const servers: TestServer[] = [];
async function serve(status: number, body: () => unknown, headers: Record<string, string> = {}): Promise<TestServer> {
  const s = await startServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body() === 'string' ? (body() as string) : JSON.stringify(body()));
  });
  servers.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const clock = new FakeClock(Date.UTC(2026, 10, 23, 12));

async function refusal(promise: Promise<unknown>): Promise<KeymeshError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeymeshError);
  expect(err).toMatchObject({ code: 'ERR_POP_UNAVAILABLE' });
  return err as KeymeshError;
}

describe("resource servers' POP keys", () => {
  it('uses the first enc key of a POP for its max-age, and refuses a POP whose key set is huge', async () => {
    const s = await serve(200, () => ({ keys: [sig, enc] }), { 'cache-control': 'public, max-age=60' });
    const pops = new PopKeys(clock);
    await expect(pops.get(`${s.base}/pop`)).resolves.toMatchObject({ kid: 'e1', alg: 'ECDH-ES+A256KW' });
    await pops.get(`${s.base}/pop`);
    expect(s.requests()).toBe(1);
    clock.advance(61_000);
    await pops.get(`${s.base}/pop`);
    expect(s.requests()).toBe(2);

    const padding = Array.from({ length: 1_000 }, (_, i) => ({ ...sig, kid: `pad-${i}` }));
    const huge = await serve(200, () => ({ keys: [enc, ...padding] }));
    const err = await refusal(pops.get(`${huge.base}/pop`));
    expect(err.cause).toMatchObject({ url: `${huge.base}/pop`, reason: expect.stringContaining('limit') });
  });

  it('shares one fetch among the callers that need a POP while it is fetched, its failure too', async () => {
    let down = false;
    const s = await serve(200, () => (down ? 'not json' : { keys: [enc] }));
    const pops = new PopKeys(clock);
    // no max-age: nothing is cached, yet ten exchanges arriving together cost the POP one request
    const keys = await Promise.all(Array.from({ length: 10 }, (_, i) => pops.get(`${s.base}/pop`, i % 2 === 0)));
    expect(keys.every((k) => k.kid === 'e1')).toBe(true);
    expect(s.requests()).toBe(1);
    // once that fetch settled, the next caller fetches again
    await pops.get(`${s.base}/pop`);
    expect(s.requests()).toBe(2);
    down = true;
    const failures = Array.from({ length: 5 }, () => refusal(pops.get(`${s.base}/pop`)));
    await Promise.all(failures);
    expect(s.requests()).toBe(3);
    down = false;
    await expect(pops.get(`${s.base}/pop`)).resolves.toMatchObject({ kid: 'e1' });
    expect(s.requests()).toBe(4);
  });

  it('refuses a POP that redirects, and the redirect target sees no request', async () => {
    const target = await serve(200, () => ({ keys: [enc] }));
    const redirector = await serve(302, () => '', { location: `${target.base}/pop` });
    await refusal(new PopKeys(clock).get(`${redirector.base}/pop`));
    expect(target.requests()).toBe(0);
  });

  it('refuses a POP over plain http to a non-loopback host without connecting, naming nothing', async () => {
    const spy = vi.fn<typeof fetch>(() => Promise.reject(new Error('must not connect')));
    const err = await refusal(
      new PopKeys(clock, { fetcher: new CappedFetcher({ fetch: spy }) }).get('http://192.0.2.1/pop'),
    );
    expect(spy).not.toHaveBeenCalled();
    expect(err.message).not.toContain('192.0.2.1');
    expect(err.cause).toMatchObject({ url: 'http://192.0.2.1/pop' });
  });

  it("tells the caller neither the POP's URL nor what it answered; the cause has both", async () => {
    const failing = await serve(500, () => 'stack trace of the POP host');
    const noKey = await serve(200, () => ({ keys: [sig] }));
    const notJson = await serve(200, () => '<html>secret page</html>');
    const pops = new PopKeys(clock);
    const cases: Array<[TestServer, string, Record<string, unknown>]> = [
      [failing, "the resource server's POP could not be fetched", { status: 500 }],
      [noKey, "the resource server's POP publishes no encryption key", {}],
      [notJson, "the resource server's POP is not JSON", {}],
    ];
    for (const [s, message, detail] of cases) {
      const err = await refusal(pops.get(`${s.base}/pop`));
      expect(err.message).toBe(message);
      for (const leak of [s.base, '127.0.0.1', '500', 'stack trace', 'secret page'])
        expect(err.message).not.toContain(leak);
      expect(err.cause).toMatchObject({ url: `${s.base}/pop`, ...detail });
    }
  });
});
