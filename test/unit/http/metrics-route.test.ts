import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { hashOperatorToken, OperatorAuth } from '../../../src/http/operator-auth.js';
import { buildHttpApp } from '../../../src/http/server.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import { makeKeyring } from '../../helpers/keyring.js';
import { samplesOf, metricValue } from '../../helpers/metrics-text.js';
import { testHttpDeps } from '../../helpers/http-deps.js';

const ADMIN = 'operator-token-that-must-never-show';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

/** An HTTP app over a real keyring, with metrics unless told otherwise; no token service or secret server. */
async function setup(options: { metrics?: boolean } = {}) {
  const ctx = await makeKeyring();
  await ctx.rotation.check();
  const metrics = new Metrics();
  metrics.watch({ keyring: ctx.keyring, members: () => [], realms: Object.keys(ctx.config.realms) });
  const deps = testHttpDeps(ctx, {
    auth: new OperatorAuth([{ name: 'admin', hash: hashOperatorToken(ADMIN), scopes: ['admin', 'backend'] }]),
    ...(options.metrics === false ? {} : { metrics }),
  });
  app = buildHttpApp(deps);
  await app.ready();
  return { ...ctx, app };
}

describe('GET /metrics', () => {
  it('answers without a token, in the Prometheus text format, never cached', async () => {
    const { app } = await setup();
    const res = await app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4; charset=utf-8/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toContain('# TYPE keymesh_keys gauge');
    expect(metricValue(res.body, 'keymesh_keys', { realm: 'default', use: 'sig', state: 'active' })).toBe(1);
  });

  it('times earlier requests by route pattern, method and status class, never by raw URL', async () => {
    const { app } = await setup();
    await app.inject('/healthz?probe=raw-query-value');
    await app.inject('/v1/keys');
    await app.inject({ url: '/v1/keys', headers: { authorization: `Bearer ${ADMIN}` } });
    await app.inject('/no/such/route-raw-path');
    const body = (await app.inject('/metrics')).body;
    const histogram = 'keymesh_http_request_duration_seconds_count';
    expect(metricValue(body, histogram, { route: '/healthz', method: 'GET', status_class: '2xx' })).toBe(1);
    expect(metricValue(body, histogram, { route: '/v1/keys', method: 'GET', status_class: '4xx' })).toBe(1);
    expect(metricValue(body, histogram, { route: '/v1/keys', method: 'GET', status_class: '2xx' })).toBe(1);
    expect(metricValue(body, histogram, { route: 'unmatched', method: 'GET', status_class: '4xx' })).toBe(1);
    expect(body).not.toContain('raw-query-value');
    expect(body).not.toContain('route-raw-path');
    // the second scrape sees the first
    expect(metricValue((await app.inject('/metrics')).body, histogram, { route: '/metrics' })).toBe(1);
  });

  it('counts token-service and secret-server requests by outcome', async () => {
    const { app } = await setup();
    await app.inject({ method: 'POST', url: '/token', headers: FORM, payload: 'grant_type=client_credentials' });
    await app.inject({ method: 'POST', url: '/introspect', headers: FORM, payload: 'token=abc' });
    await app.inject({ method: 'POST', url: '/secret-server/token-exchange', headers: FORM, payload: 'grant_type=x' });
    const body = (await app.inject('/metrics')).body;
    // this app runs without either service: each request ends 503 temporarily_unavailable
    expect(
      metricValue(body, 'keymesh_token_requests_total', { endpoint: 'token', outcome: 'temporarily_unavailable' }),
    ).toBe(1);
    expect(
      metricValue(body, 'keymesh_token_requests_total', { endpoint: 'introspect', outcome: 'temporarily_unavailable' }),
    ).toBe(1);
    expect(metricValue(body, 'keymesh_secret_server_requests_total', { outcome: 'temporarily_unavailable' })).toBe(1);
  });

  it('shows nothing secret: no kid, key material, token or digest', async () => {
    const { app, keyring } = await setup();
    await app.inject({ url: '/v1/keys', headers: { authorization: `Bearer ${ADMIN}` } });
    await app.inject({ method: 'POST', url: '/revoke', headers: FORM, payload: 'token=eyJhbGciOiJFUzI1NiJ9.e30.sig' });
    const body = (await app.inject('/metrics')).body;
    expect(keyring.list().length).toBeGreaterThan(0);
    for (const key of keyring.list()) expect(body).not.toContain(key.kid);
    expect(body).not.toContain(keyring.digest());
    expect(body).not.toContain(ADMIN);
    expect(body).not.toMatch(/eyJ|BEGIN|"k"|"d"/);
    for (const sample of samplesOf(body, 'keymesh_token_requests_total'))
      expect(Object.keys(sample.labels).sort()).toEqual(['endpoint', 'outcome']);
  });

  it('is not served by a node built without metrics', async () => {
    const { app } = await setup({ metrics: false });
    expect((await app.inject('/metrics')).statusCode).toBe(404);
  });

  it('counts, without timing, the public key documents the fast path answers', async () => {
    const { app } = await setup();
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    for (const path of ['/pop', '/.well-known/jwks.json']) expect((await fetch(`${base}${path}`)).status).toBe(200);
    const body = await (await fetch(`${base}/metrics`)).text();
    expect(metricValue(body, 'keymesh_http_fast_path_responses_total')).toBe(2);
    expect(samplesOf(body, 'keymesh_http_request_duration_seconds_count', { route: '/pop' })).toHaveLength(0);
  });
});
