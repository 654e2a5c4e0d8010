import { afterEach, describe, expect, it, vi } from 'vitest';
import { OUTBOUND_FETCH_MAX_BYTES } from '../../../src/config/defaults.js';
import { KeymeshError } from '../../../src/errors.js';
import { CappedFetcher, FetchFailure } from '../../../src/net/capped-fetch.js';
import { waitFor } from '../../helpers/wait-for.js';
import { startServer, streamBody, type StreamReport, type TestServer } from './servers.js';

const POP = { code: 'ERR_POP_UNAVAILABLE', message: "the resource server's POP could not be fetched" } as const;
const servers: TestServer[] = [];
const serve = async (...args: Parameters<typeof startServer>) => {
  const s = await startServer(...args);
  servers.push(s);
  return s;
};
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** The error `promise` rejects with. */
async function failure(promise: Promise<unknown>): Promise<KeymeshError & { cause: FetchFailure }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeymeshError);
  expect((err as KeymeshError).cause).toBeInstanceOf(FetchFailure);
  return err as KeymeshError & { cause: FetchFailure };
}

describe('capped fetch', () => {
  it('fetches a document of a loopback server over plain http', async () => {
    const s = await serve((_req, res) => res.end('{"keys":[]}'));
    const doc = await new CappedFetcher().get(`${s.base}/jwks`, POP);
    expect(new TextDecoder().decode(doc.body)).toBe('{"keys":[]}');
    expect(doc.status).toBe(200);
  });

  it('refuses a redirect, and the server it points to sees no request', async () => {
    const target = await serve((_req, res) => res.end('{"keys":[]}'));
    const redirector = await serve((_req, res) => {
      res.writeHead(302, { location: `${target.base}/jwks` });
      res.end();
    });
    const err = await failure(new CappedFetcher().get(`${redirector.base}/pop`, POP));
    expect(err.code).toBe('ERR_POP_UNAVAILABLE');
    expect(err.cause).toMatchObject({ status: 302, reason: expect.stringContaining('redirect') });
    expect(redirector.requests()).toBe(1);
    expect(target.requests()).toBe(0);
  });

  it('refuses an oversized streamed body and cuts the connection before the server finished', async () => {
    // 64 MiB, more than loopback socket buffers can hold (they absorb a few MiB before the client reads them),
    // so only a client that cuts the connection stops the server before its last write
    const report: StreamReport = { written: 0, finished: false, closedEarly: false };
    const total = 64 * 1024 * 1024;
    const s = await serve(streamBody(report, total));
    const err = await failure(new CappedFetcher().get(`${s.base}/pop`, POP));
    expect(err.cause.reason).toContain(`limit of ${OUTBOUND_FETCH_MAX_BYTES} bytes`);
    await waitFor(() => report.closedEarly || report.finished, { message: 'the server saw the connection end' });
    expect(report).toMatchObject({ closedEarly: true, finished: false });
    expect(report.written).toBeLessThan(total);
  });

  it('refuses a body announced larger than the limit without waiting for it', async () => {
    let closed = false;
    // announces 10 MiB and then sends only 100 bytes: only the announced length can end this fetch before its timeout
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(10 * 1024 * 1024) });
      res.write(' '.repeat(100));
      res.on('close', () => (closed = true));
    });
    const err = await failure(new CappedFetcher({ timeoutMs: 20_000 }).get(`${s.base}/pop`, POP));
    expect(err.cause.reason).toContain('announced 10485760 bytes');
    await waitFor(() => closed, { message: 'the server saw the connection cut' });
  });

  it('gives up on a server that never answers after the configured timeout', async () => {
    const s = await serve(() => undefined);
    const err = await failure(
      new CappedFetcher({ timeoutMs: 100 }).get(`${s.base}/jwks`, { code: 'ERR_IDP_UNAVAILABLE' }),
    );
    expect(err.code).toBe('ERR_IDP_UNAVAILABLE');
    expect(err.cause.reason).toBe('took longer than 100 ms');
    expect(s.requests()).toBe(1);
  });

  it('refuses plain http to a non-loopback host, and other schemes, without connecting', async () => {
    const spy = vi.fn<typeof fetch>(() => Promise.reject(new Error('must not connect')));
    const fetcher = new CappedFetcher({ fetch: spy, timeoutMs: 60_000 });
    for (const url of [
      'http://192.0.2.1/',
      'http://10.0.0.1/pop',
      'http://169.254.169.254/latest',
      'http://example.com/jwks',
      'file:///etc/passwd',
      'ftp://127.0.0.1/x',
      'not a url',
    ]) {
      const err = await failure(fetcher.get(url, POP));
      expect(err.code, url).toBe('ERR_POP_UNAVAILABLE');
      expect(err.cause.reason, url).toMatch(/refused before connecting|not a valid URL/);
    }
    expect(spy).not.toHaveBeenCalled();
    // the real fetch, with a timeout long past the test's: it fails at once, so it never tried 192.0.2.1
    await expect(new CappedFetcher({ timeoutMs: 60_000 }).get('http://192.0.2.1/', POP)).rejects.toMatchObject({
      code: 'ERR_POP_UNAVAILABLE',
    });
    // https anywhere, and http to loopback hosts, are let through to the fetch
    for (const url of ['https://idp.example/jwks', 'http://localhost:9/x', 'http://127.0.0.2:9/x', 'http://[::1]:9/x'])
      await failure(fetcher.get(url, POP));
    expect(spy).toHaveBeenCalledTimes(4);
    expect(spy.mock.calls.every(([, init]) => init?.redirect === 'manual' && init.method === 'GET')).toBe(true);
  });

  it('makes one request for ten concurrent gets of one URL, and shares its result', async () => {
    const s = await serve((_req, res) => res.end('{"keys":[1]}'));
    const fetcher = new CappedFetcher();
    const docs = await Promise.all(Array.from({ length: 10 }, () => fetcher.get(`${s.base}/jwks`, POP)));
    expect(s.requests()).toBe(1);
    expect(new Set(docs.map((d) => new TextDecoder().decode(d.body)))).toEqual(new Set(['{"keys":[1]}']));
    await fetcher.get(`${s.base}/jwks`, POP); // nothing cached once the fetch is done
    expect(s.requests()).toBe(2);
  });

  it('tells the caller nothing of the target: no URL, no status, no body; the cause has them', async () => {
    const s = await serve((_req, res) => {
      res.statusCode = 500;
      res.end('internal detail of the target');
    });
    const url = `${s.base}/pop`;
    const fetcher = new CappedFetcher();
    const [asPop, asIdp] = await Promise.all([
      failure(fetcher.get(url, POP)),
      failure(fetcher.get(url, { code: 'ERR_IDP_UNAVAILABLE' })),
    ]);
    expect(s.requests()).toBe(1);
    expect(asPop).toMatchObject({ code: 'ERR_POP_UNAVAILABLE', message: POP.message });
    expect(asIdp).toMatchObject({ code: 'ERR_IDP_UNAVAILABLE', message: 'a remote document could not be fetched' });
    for (const err of [asPop, asIdp]) {
      for (const leak of [url, s.base.slice('http://'.length), '127.0.0.1', '500', 'internal detail'])
        expect(err.message).not.toContain(leak);
      expect(err.cause).toMatchObject({ url, status: 500, reason: 'answered 500' });
      expect(String(err.cause)).toContain(url);
    }
  });
});
