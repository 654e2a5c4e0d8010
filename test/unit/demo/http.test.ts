/** The demo servers' HTTP bits (tools/demo/http.ts) on a local `node:http` server: JSON bodies, answers, errors. */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { closeServer, describeFailure, HttpError, readJson, sendError, sendJson } from '../../../tools/demo/http.js';
import { listenOnLoopback } from '../../../tools/harness/http.js';

const servers: Server[] = [];

/** An echo server: reads a JSON object and answers it with 200, or answers the error. */
async function echo(): Promise<{ server: Server; url: string }> {
  const app = await listenOnLoopback((req: IncomingMessage, res: ServerResponse) => {
    readJson(req).then(
      (body) => sendJson(res, 200, { got: body }),
      (err: unknown) => sendError(res, err),
    );
  });
  servers.push(app.server);
  return app;
}

afterEach(async () => {
  for (const server of servers.splice(0)) if (server.listening) await closeServer(server);
});

const post = (url: string, body: string) => fetch(url, { method: 'POST', body });

describe('readJson and sendJson', () => {
  it('reads a JSON object and answers JSON that is not to be stored', async () => {
    const { url } = await echo();
    const res = await post(url, JSON.stringify({ note: 'hello', n: 1 }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({ got: { note: 'hello', n: 1 } });
  });

  it.each([
    ['an array', '[1,2]'],
    ['a string', '"text"'],
    ['null', 'null'],
    ['no JSON at all', '{not json'],
    ['an empty body', ''],
  ])('answers 400 invalid_request to %s', async (_what, body) => {
    const { url } = await echo();
    const res = await post(url, body);
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'the body must be a JSON object' });
  });

  it('answers 413 to a body over 64 KiB', async () => {
    const { url } = await echo();
    const res = await post(url, JSON.stringify({ big: 'x'.repeat(70 * 1024) }));
    expect(res.status).toBe(413);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'the body exceeds 65536 bytes' });
  });
});

describe('sendError', () => {
  async function failing(err: unknown): Promise<Response> {
    const app = await listenOnLoopback((_req, res) => sendError(res, err));
    servers.push(app.server);
    return fetch(app.url);
  }

  it('answers an HttpError with its own status, code and description', async () => {
    const res = await failing(new HttpError(401, 'access_denied', 'wrong username or password'));
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error: 'access_denied', error_description: 'wrong username or password' });
  });

  it('answers any other error as a 500 server_error with its message', async () => {
    const res = await failing(new Error('the node did not answer'));
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: 'server_error', error_description: 'the node did not answer' });
  });
});

describe('describeFailure', () => {
  it('gives the status, the error code and the description of a JSON error answer', async () => {
    const res = new Response(JSON.stringify({ error: 'invalid_client', error_description: 'unknown client' }), {
      status: 401,
    });
    expect(await describeFailure(res)).toBe('401 invalid_client: unknown client');
  });

  it('leaves out a missing description', async () => {
    expect(await describeFailure(new Response('{"error":"invalid_request"}', { status: 400 }))).toBe(
      '400 invalid_request',
    );
  });

  it('falls back on the status text when the answer is not JSON', async () => {
    const res = new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' });
    expect(await describeFailure(res)).toBe('502 Bad Gateway');
  });
});

describe('closeServer', () => {
  it('stops listening and closes a connection that is still open', async () => {
    const { server, url } = await echo();
    const socket = connect(Number(new URL(url).port), '127.0.0.1');
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
    await new Promise<void>((resolve) => socket.on('connect', () => resolve()));
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}');
    await new Promise<void>((resolve) => socket.once('data', () => resolve()));
    await closeServer(server);
    await closed;
    expect(server.listening).toBe(false);
  });
});
