/** The demo's fetch tap (tools/demo/wire-tap.ts) against a local `node:http` server. */
import type { Server } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listenOnLoopback } from '../../../tools/harness/http.js';
import { type TappedCall, withFetchTap } from '../../../tools/demo/wire-tap.js';

let server: Server;
let url: string;

beforeEach(async () => {
  ({ server, url } = await listenOnLoopback((req, res) => {
    const status = req.url === '/missing' ? 404 : 200;
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ path: req.url }));
  }));
});
afterEach(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('withFetchTap', () => {
  it("records every request's method, URL and status, and returns the work's value", async () => {
    const calls: TappedCall[] = [];
    const value = await withFetchTap(calls, [], async () => {
      await fetch(`${url}/a?x=1`);
      await fetch(`${url}/missing`, { method: 'POST', body: '{}' });
      await fetch(new Request(`${url}/b`, { method: 'PUT', body: '{}' }));
      return 'done';
    });
    expect(value).toBe('done');
    expect(calls.map((c) => [c.method, c.url.pathname + c.url.search, c.status])).toEqual([
      ['GET', '/a?x=1', 200],
      ['POST', '/missing', 404],
      ['PUT', '/b', 200],
    ]);
  });

  it('keeps the JSON answer only for the paths named, and the caller still reads the answer', async () => {
    const calls: TappedCall[] = [];
    const read = await withFetchTap(calls, ['/kept'], async () => {
      const kept = await (await fetch(`${url}/kept`)).json();
      const other = await (await fetch(`${url}/other`)).json();
      return [kept, other];
    });
    expect(read).toEqual([{ path: '/kept' }, { path: '/other' }]);
    expect(calls[0]!.json).toEqual({ path: '/kept' });
    expect('json' in calls[1]!).toBe(false);
  });

  it('records a request that got no answer without a status, and rethrows its error', async () => {
    const closed = await listenOnLoopback();
    await new Promise<void>((resolve) => closed.server.close(() => resolve()));
    const calls: TappedCall[] = [];
    await expect(withFetchTap(calls, [], () => fetch(`${closed.url}/gone`))).rejects.toThrow();
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: 'GET', status: undefined });
    expect(calls[0]!.url.pathname).toBe('/gone');
  });

  it('puts the original fetch back afterwards, also when the work throws', async () => {
    const original = globalThis.fetch;
    await withFetchTap([], [], async () => {
      expect(globalThis.fetch).not.toBe(original);
    });
    expect(globalThis.fetch).toBe(original);
    await expect(
      withFetchTap([], [], async () => {
        throw new Error('step failed');
      }),
    ).rejects.toThrow('step failed');
    expect(globalThis.fetch).toBe(original);
  });

  it('refuses a second tap while one is open, and allows one after it closed', async () => {
    await withFetchTap([], [], async () => {
      await expect(withFetchTap([], [], async () => undefined)).rejects.toThrow('a fetch tap is already open');
    });
    await expect(withFetchTap([], [], async () => 'again')).resolves.toBe('again');
  });
});
