/**
 * The harness's HTTP helpers (tools/harness/http.ts) against local `node:http` servers: no keymesh node, no cluster.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, listenOnLoopback, pollUntil200, rawRequest } from '../../../tools/harness/http.js';

const servers: Server[] = [];

/** A loopback server for one test, closed (with its connections) after it. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const { server, url } = await listenOnLoopback(handler);
  servers.push(server);
  return url;
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

describe('freePort', () => {
  it('returns a port on 127.0.0.1 that can be bound', async () => {
    const port = await freePort();
    expect(Number.isInteger(port) && port > 0 && port < 65536).toBe(true);
    const server = createServer();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('does not return the same port twice in a row', async () => {
    const ports: number[] = [];
    for (let i = 0; i < 5; i++) ports.push(await freePort());
    for (let i = 1; i < ports.length; i++)
      expect(ports[i], `call ${i + 1} of ${ports.join(', ')}`).not.toBe(ports[i - 1]);
  });
});

describe('listenOnLoopback', () => {
  it('listens on 127.0.0.1 at the port of its URL', async () => {
    const { server, url } = await listenOnLoopback();
    servers.push(server);
    const address = server.address();
    expect(address).toMatchObject({ address: '127.0.0.1' });
    expect(url).toBe(`http://127.0.0.1:${(address as { port: number }).port}`);
  });
});

describe('rawRequest', () => {
  it('returns the status, the raw headers and the body, and sends method, headers and body', async () => {
    const url = await serve((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        res.writeHead(201, { 'X-Echo-Method': req.method ?? '', 'content-type': 'text/plain' });
        res.end(`${req.headers['x-test']}:${body}`);
      });
    });
    const res = await rawRequest(`${url}/things`, { method: 'PUT', headers: { 'x-test': 'yes' }, body: 'payload' });
    expect(res.status).toBe(201);
    expect(res.body.toString('utf8')).toBe('yes:payload');
    // the raw list keeps the original case of names, in order
    expect(res.rawHeaders.slice(0, 2)).toEqual(['X-Echo-Method', 'PUT']);
  });

  it('fails with "no answer within N ms" when the server does not answer in time', async () => {
    const url = await serve(() => {
      // never answers
    });
    const started = performance.now();
    await expect(rawRequest(`${url}/slow`, { timeoutMs: 150 })).rejects.toThrow(`${url}/slow: no answer within 150 ms`);
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(2_000);
  });

  it('fails when nothing listens on the port', async () => {
    const port = await freePort();
    await expect(rawRequest(`http://127.0.0.1:${port}/`)).rejects.toThrow(/ECONNREFUSED/);
  });
});

describe('pollUntil200', () => {
  it('polls until the first 200 and resolves with its time', async () => {
    let calls = 0;
    const url = await serve((_req, res) => {
      calls++;
      res.writeHead(calls < 3 ? 503 : 200).end();
    });
    const before = performance.now();
    const at = await pollUntil200(url, 10, 5_000, new Promise<string>(() => {}));
    expect(calls).toBe(3);
    expect(at).toBeGreaterThan(before);
    expect(at).toBeLessThanOrEqual(performance.now());
  });

  it('gives up with the reason once `giveUp` settles', async () => {
    const url = await serve((_req, res) => res.writeHead(503).end());
    await expect(pollUntil200(url, 10, 5_000, Promise.resolve('process 1 exited'))).rejects.toThrow('process 1 exited');
  });

  it('fails after `timeoutMs` without a 200', async () => {
    const url = await serve((_req, res) => res.writeHead(503).end());
    await expect(pollUntil200(`${url}/readyz`, 10, 100, new Promise<string>(() => {}))).rejects.toThrow(
      `${url}/readyz did not answer 200 within 100 ms`,
    );
  });
});
