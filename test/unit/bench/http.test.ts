/** The probes' HTTP helpers (tools/bench/http.ts) against a local `node:http` server: no keymesh node. */
import { Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { headerValue, keptRequest } from '../../../tools/bench/http.js';
import { listenOnLoopback } from '../../../tools/harness/http.js';

const servers: Server[] = [];
const agents: Agent[] = [];

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<number> {
  const { server, url } = await listenOnLoopback(handler);
  servers.push(server);
  return Number(new URL(url).port);
}

function agent(): Agent {
  const a = new Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(a);
  return a;
}

afterEach(async () => {
  for (const a of agents.splice(0)) a.destroy();
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

describe('headerValue', () => {
  const raw = ['Content-Type', 'application/json', 'ETag', '"abc"', 'etag', '"later"'];

  it('finds a header whatever the case of its name, the first one when repeated', () => {
    expect(headerValue(raw, 'etag')).toBe('"abc"');
    expect(headerValue(raw, 'CONTENT-TYPE')).toBe('application/json');
  });

  it('is undefined for a missing header and never reads a value as a name', () => {
    expect(headerValue(raw, 'cache-control')).toBeUndefined();
    expect(headerValue(raw, 'application/json')).toBeUndefined();
    expect(headerValue(['x-alone'], 'x-alone')).toBeUndefined();
  });
});

describe('keptRequest', () => {
  it('sends method, path, headers and body, and returns the status and the body as text', async () => {
    const port = await serve((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        res.writeHead(201).end(`${req.method} ${req.url} ${req.headers['x-probe']} ${body}`);
      });
    });
    const answer = await keptRequest({
      agent: agent(),
      port,
      method: 'PUT',
      path: '/v1/register/k',
      headers: { 'x-probe': 'yes' },
      body: 'value',
      timeoutMs: 5_000,
    });
    expect(answer).toEqual({ status: 201, text: 'PUT /v1/register/k yes value' });
  });

  it("reuses the agent's kept connection for the next request", async () => {
    const remotePorts: number[] = [];
    const port = await serve((req, res) => {
      remotePorts.push(req.socket.remotePort!);
      res.end('ok');
    });
    const a = agent();
    const get = { agent: a, port, method: 'GET', path: '/', headers: {}, body: undefined, timeoutMs: 5_000 };
    await keptRequest(get);
    await keptRequest(get);
    expect(remotePorts).toHaveLength(2);
    expect(remotePorts[1]).toBe(remotePorts[0]);
  });

  it('fails with code "timeout" when the server does not answer in time', async () => {
    const port = await serve(() => {
      // never answers
    });
    const request = keptRequest({
      agent: agent(),
      port,
      method: 'GET',
      path: '/',
      headers: {},
      body: undefined,
      timeoutMs: 50,
    });
    await expect(request).rejects.toMatchObject({ message: 'timeout', code: 'timeout' });
  });
});
