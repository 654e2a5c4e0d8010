/**
 * `POST /token` in front of fastify (`token-fast-path.ts`), over a real listener: the requests it takes get the
 * answers the fastify route gives (a query string sends the same request through fastify, for comparison), its
 * failures are throttled and counted as fastify's are, and whatever it does not take reaches fastify whole.
 */
import { EventEmitter } from 'node:events';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { decodeJwt, generateKeyPair } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hashOperatorToken, OperatorAuth } from '../../../src/http/operator-auth.js';
import { tokenFastPath } from '../../../src/http/routes/token-fast-path.js';
import { buildHttpApp } from '../../../src/http/server.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import { AuthThrottle } from '../../../src/tokens/auth-throttle.js';
import { hashClientSecret, type ClientConfig } from '../../../src/tokens/clients.js';
import { makeKeyring, TEST_REALMS } from '../../helpers/keyring.js';
import { metricValue } from '../../helpers/metrics-text.js';
import { unitTokenService } from '../../helpers/unit-token-service.js';
import { waitFor } from '../../helpers/wait-for.js';
import { testHttpDeps } from '../../helpers/http-deps.js';

const API = 'https://api.example';
const SECRET = 'secret of app 0123456789';
const FORM = 'application/x-www-form-urlencoded';
const GRANT = 'grant_type=client_credentials';
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const RIGHT = basic('app', SECRET);
const WRONG = basic('app', 'not the secret');

let client: ClientConfig;
beforeAll(async () => {
  client = {
    clientId: 'app',
    secretHash: await hashClientSecret(SECRET, { N: 1024, r: 8, p: 1 }),
    grants: ['client_credentials'],
    audiences: [API],
  };
});

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** A listening app with a token service for the default realm; `seen` counts the requests fastify handled. */
async function setup(options: { shedding?: Record<string, number>; perClient?: number } = {}) {
  const raw = { jwks: { maxAgeMs: 300_000 }, realms: TEST_REALMS, http: { shedding: options.shedding ?? {} } };
  const ctx = await makeKeyring({ raw });
  const signing = (await generateKeyPair('ES256')).privateKey;
  const throttle = new AuthThrottle({ perClient: options.perClient ?? 100, tarpitMs: 0 });
  const tokens = unitTokenService({
    issuer: 'https://sts.example',
    clock: ctx.clock,
    clients: [client],
    registry: { throttle },
    signing: () => ({ kid: 'k1', key: signing }),
  });
  const metrics = new Metrics();
  const deps = testHttpDeps(ctx, {
    auth: new OperatorAuth([{ name: 'admin', hash: hashOperatorToken('admin-token-0123'), scopes: ['admin'] }]),
    tokens: new Map([['default', tokens]]),
    metrics,
  });
  const built = buildHttpApp(deps);
  app = built;
  const seen = { count: 0 };
  built.addHook('onRequest', (_req, _reply, done) => {
    seen.count += 1;
    done();
  });
  await built.listen({ host: '127.0.0.1', port: 0 });
  const port = (built.server.address() as AddressInfo).port;
  return { port, seen, metrics, deps };
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
}

function post(port: number, path: string, body: string | undefined, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const form = (port: number, path: string, body: string, authorization = RIGHT, extra: Record<string, string> = {}) =>
  post(port, path, body, {
    'content-type': FORM,
    'content-length': String(Buffer.byteLength(body)),
    authorization,
    ...extra,
  });

/** The answer without what differs from token to token. */
const shape = (a: Answer) => ({
  status: a.status,
  type: a.headers['content-type'],
  cache: a.headers['cache-control'],
  pragma: a.headers['pragma'],
  challenge: a.headers['www-authenticate'],
  body: { ...a.body, access_token: typeof a.body['access_token'] },
});

describe('POST /token in front of fastify', () => {
  it('issues a client_credentials token without fastify, answering as the fastify route does', async () => {
    const { port, seen } = await setup();
    const fast = await form(port, '/token', `${GRANT}&audience=${encodeURIComponent(API)}`);
    expect(seen.count).toBe(0);
    expect(fast.status).toBe(200);
    expect(decodeJwt(fast.body['access_token'] as string)).toMatchObject({ client_id: 'app', aud: API });
    const routed = await form(port, '/token?via=fastify', `${GRANT}&audience=${encodeURIComponent(API)}`);
    expect(seen.count).toBe(1);
    expect(shape(fast)).toEqual(shape(routed));
    expect(shape(fast)).toMatchObject({ cache: 'no-store', pragma: 'no-cache', body: { token_type: 'Bearer' } });
  });

  it('answers a wrong secret, a malformed form, an unknown grant and more than was granted as the error edge does', async () => {
    const { port, seen } = await setup();
    const cases: [string, string, number, string][] = [
      [GRANT, WRONG, 401, 'invalid_client'],
      ['audience=x', RIGHT, 400, 'invalid_request'],
      ['grant_type=password&username=u&password=p', RIGHT, 400, 'unsupported_grant_type'],
      [`${GRANT}&scope=${'s'.repeat(3000)}`, RIGHT, 400, 'invalid_request'],
      [`${GRANT}&resource=not-a-uri`, RIGHT, 400, 'invalid_target'],
      // a valid client asking for more than it was granted: an audience, a resource, a grant it is not registered for
      [`${GRANT}&audience=${encodeURIComponent('https://other.example')}`, RIGHT, 400, 'invalid_target'],
      [`${GRANT}&resource=${encodeURIComponent('https://other.example/api')}`, RIGHT, 400, 'invalid_target'],
      [
        `grant_type=${encodeURIComponent('urn:ietf:params:oauth:grant-type:token-exchange')}&subject_token=x&subject_token_type=${encodeURIComponent('urn:ietf:params:oauth:token-type:access_token')}`,
        RIGHT,
        400,
        'unauthorized_client',
      ],
    ];
    for (const [body, authorization, status, error] of cases) {
      const fast = await form(port, '/token', body, authorization);
      expect(seen.count).toBe(0);
      const routed = await form(port, '/token?via=fastify', body, authorization);
      expect(fast.status).toBe(status);
      expect(fast.body['error']).toBe(error);
      expect(shape(fast)).toEqual(shape(routed));
      seen.count = 0;
    }
    expect((await form(port, '/token', GRANT, WRONG)).headers['www-authenticate']).toBe('Basic realm="keymesh"');
  });

  it('counts a failed authentication once for the throttle, and refuses the client past its limit', async () => {
    const { port } = await setup({ perClient: 3 });
    for (let i = 0; i < 3; i++) expect((await form(port, '/token', GRANT, WRONG)).status).toBe(401);
    // the right secret is now refused too, on either path: the same throttle counted each failure once
    const fast = await form(port, '/token', GRANT, RIGHT);
    expect(fast.status).toBe(429);
    expect(shape(fast)).toEqual(shape(await form(port, '/token?via=fastify', GRANT, RIGHT)));
  });

  it('leaves to fastify what it does not take: DPoP, JSON, chunked, oversized and empty bodies, other charsets', async () => {
    const { port, seen, deps } = await setup();
    const before = () => seen.count;
    const sent: [() => Promise<Answer>, number][] = [
      [() => form(port, '/token', GRANT, RIGHT, { dpop: 'not-a-proof' }), 400],
      [
        () =>
          post(port, '/token', '{"grant_type":"client_credentials"}', {
            'content-type': 'application/json',
            authorization: RIGHT,
          }),
        200,
      ],
      [
        () =>
          post(port, '/token', GRANT, { 'content-type': FORM, 'transfer-encoding': 'chunked', authorization: RIGHT }),
        200,
      ],
      [() => form(port, '/token', `${GRANT}&scope=${'s'.repeat(deps.config.http.bodyLimitBytes)}`), 413],
      [() => post(port, '/token', '', { 'content-type': FORM, 'content-length': '0', authorization: RIGHT }), 400],
      [() => form(port, '/token', GRANT, RIGHT, { 'content-type': `${FORM}; charset=iso-8859-1` }), 200],
    ];
    for (const [send, status] of sent) {
      const count = before();
      const answer = await send();
      expect(answer.status).toBe(status);
      expect(seen.count).toBe(count + 1);
    }
  });

  it('sends requests to fastify while the node is under pressure, which sheds them', async () => {
    const { port, seen } = await setup({ shedding: { maxRssBytes: 1, sampleIntervalMs: 10 } });
    let answer: Answer | undefined;
    await waitFor(
      async () => {
        answer = await form(port, '/token', GRANT);
        return answer.status === 503;
      },
      {
        timeoutMs: 10_000,
        message: 'a node past its RSS limit sheds POST /token',
      },
    );
    expect(answer!.headers['retry-after']).toBeDefined();
    expect(answer!.body['error']).toBe('temporarily_unavailable');
    // only fastify sheds (its shedding hook answers before the test's own hook counts the request)
    expect(seen.count).toBe(0);
  });

  it('records the request duration under the route pattern and the token outcome, as the fastify route does', async () => {
    const { port, metrics } = await setup();
    await form(port, '/token', GRANT);
    await form(port, '/token', GRANT, WRONG);
    const body = (await metrics.render()).body;
    const histogram = 'keymesh_http_request_duration_seconds_count';
    expect(metricValue(body, histogram, { route: '/token', method: 'POST', status_class: '2xx' })).toBe(1);
    expect(metricValue(body, histogram, { route: '/token', method: 'POST', status_class: '4xx' })).toBe(1);
    expect(metricValue(body, 'keymesh_token_requests_total', { endpoint: 'token', outcome: 'ok' })).toBe(1);
    expect(metricValue(body, 'keymesh_token_requests_total', { endpoint: 'token', outcome: 'invalid_client' })).toBe(1);
  });

  it('answers nothing for a request whose body never completes, and goes on serving', async () => {
    const { port, metrics } = await setup();
    await new Promise<void>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.write(`POST /token HTTP/1.1\r\nhost: x\r\ncontent-type: ${FORM}\r\ncontent-length: 100\r\n\r\ngrant_`);
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on('close', () => resolve());
    });
    expect((await form(port, '/token', GRANT)).status).toBe(200);
    const body = (await metrics.render()).body;
    expect(metricValue(body, 'keymesh_token_requests_total', { endpoint: 'token', outcome: 'ok' })).toBe(1);
  });

  it('does not take a plain-HTTP request from off loopback: fastify refuses it', async () => {
    const { deps } = await setup();
    const take = tokenFastPath(deps, { tls: false, underPressure: () => false, closing: () => false });
    const req = Object.assign(new EventEmitter(), {
      method: 'POST',
      url: '/token',
      headers: { 'content-type': FORM, 'content-length': String(GRANT.length), authorization: RIGHT },
      socket: { remoteAddress: '192.0.2.7' },
    });
    expect(take(req as never, {} as never)).toBe(false);
    expect(take(Object.assign(req, { socket: { remoteAddress: '127.0.0.1' } }) as never, {} as never)).toBe(true);
    const closing = tokenFastPath(deps, { tls: false, underPressure: () => false, closing: () => true });
    expect(closing(req as never, {} as never)).toBe(false);
  });
});
