/**
 * `/v1/management-keys`: admin only, every parameter validated before anything happens, every step recorded in the
 * audit log before it is taken and refused when the line cannot be written.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryAuditLog } from '../../../src/audit/memory-audit-log.js';
import { hashOperatorToken, OperatorAuth } from '../../../src/http/operator-auth.js';
import { buildHttpApp } from '../../../src/http/server.js';
import type { ManagementKeyRotation } from '../../../src/management-key/rotation.js';
import { makeKeyring, MINUTE, TEST_REALMS } from '../../helpers/keyring.js';
import { testHttpDeps } from '../../helpers/http-deps.js';

const ADMIN = 'operator-token-of-alice';
const BACKEND = 'operator-token-of-bob';
let app: FastifyInstance | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});

async function setup() {
  const ctx = await makeKeyring({ raw: { jwks: { maxAgeMs: 5 * MINUTE }, realms: TEST_REALMS } });
  const calls: string[] = [];
  const view = { members: 1, answered: 1, complete: true, epochs: [], nodes: [] };
  const rotation = {
    status: async () => (calls.push('status'), view),
    install: async (key?: string) => (
      calls.push(`install ${key ?? 'new'}`), { ...view, epoch: 2, fingerprint: '0'.repeat(32) }
    ),
    use: async (epoch: number) => (calls.push(`use ${epoch}`), view),
    remove: async (epoch: number) => (calls.push(`remove ${epoch}`), view),
  };
  const audit = new MemoryAuditLog();
  const deps = testHttpDeps(ctx, {
    auth: new OperatorAuth([
      { name: 'alice', hash: hashOperatorToken(ADMIN), scopes: ['admin'] },
      { name: 'bob', hash: hashOperatorToken(BACKEND), scopes: ['backend'] },
    ]),
    audit,
    managementKeys: rotation as unknown as ManagementKeyRotation,
  });
  app = buildHttpApp(deps);
  await app.ready();
  return { app, calls, audit };
}

const as = (token: string) => ({ authorization: `Bearer ${token}` });

describe('the management-key routes', () => {
  it('answer only an admin token: none is 401, a backend token 403, and nothing is asked of the cluster', async () => {
    const { app, calls } = await setup();
    for (const [method, url] of [
      ['GET', '/v1/management-keys'],
      ['POST', '/v1/management-keys'],
      ['POST', '/v1/management-keys/2/use'],
      ['DELETE', '/v1/management-keys/1'],
    ] as const) {
      expect((await app.inject({ method, url })).statusCode).toBe(401);
      expect((await app.inject({ method, url, headers: as(BACKEND) })).statusCode).toBe(403);
    }
    expect(calls).toEqual([]);
  });

  it('refuse a malformed key or epoch with 400 naming the field, before anything is recorded or asked', async () => {
    const { app, calls, audit } = await setup();
    const bad = async (method: 'POST' | 'DELETE', url: string, payload?: Record<string, unknown>) => {
      const res = await app.inject({ method, url, headers: as(ADMIN), ...(payload === undefined ? {} : { payload }) });
      expect(res.statusCode, url).toBe(400);
      return (res.json() as { error_description: string }).error_description;
    };
    expect(await bad('POST', '/v1/management-keys', { key: 'short' })).toMatch(/body field key/);
    expect(await bad('POST', '/v1/management-keys', { key: `0.${'A'.repeat(43)}` })).toMatch(/body field key/);
    expect(await bad('POST', '/v1/management-keys', { key: 'A'.repeat(43), epoch: 2 })).toMatch(/body/);
    expect(await bad('POST', '/v1/management-keys/abc/use')).toMatch(/path field epoch/);
    expect(await bad('POST', '/v1/management-keys/0/use')).toMatch(/path field epoch/);
    expect(await bad('DELETE', '/v1/management-keys/99999999')).toMatch(/path field epoch/);
    expect(calls).toEqual([]);
    expect(audit.events).toEqual([]);
  });

  it('record every step with the operator before taking it, never the key, and refuse it when the line cannot be written', async () => {
    const { app, calls, audit } = await setup();
    const key = `2.${'B'.repeat(43)}`;
    expect(
      (await app.inject({ method: 'POST', url: '/v1/management-keys', headers: as(ADMIN), payload: { key } }))
        .statusCode,
    ).toBe(200);
    expect(
      (await app.inject({ method: 'POST', url: '/v1/management-keys/2/use', headers: as(ADMIN) })).statusCode,
    ).toBe(200);
    const removed = await app.inject({ method: 'DELETE', url: '/v1/management-keys/1', headers: as(ADMIN) });
    expect(removed.headers['cache-control']).toBe('no-store');
    expect(calls).toEqual([`install ${key}`, 'use 2', 'remove 1']);
    expect(audit.events).toEqual([
      expect.objectContaining({ event: 'management-key:step', operator: 'alice', step: 'install' }),
      expect.objectContaining({ event: 'management-key:step', operator: 'alice', step: 'use', epoch: 2 }),
      expect.objectContaining({ event: 'management-key:step', operator: 'alice', step: 'remove', epoch: 1 }),
    ]);
    expect(audit.lines.join('\n')).not.toContain('B'.repeat(43));
    audit.failing = true;
    expect(
      (await app.inject({ method: 'POST', url: '/v1/management-keys/2/use', headers: as(ADMIN) })).statusCode,
    ).toBe(503);
    expect(calls).toHaveLength(3);
  });

  it('never carries a management key over plain HTTP to a caller off loopback', async () => {
    const { app, calls, audit } = await setup();
    const res = await app.inject({
      method: 'POST',
      url: '/v1/management-keys',
      headers: as(ADMIN),
      payload: {},
      remoteAddress: '192.0.2.7',
    });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: expect.any(String) });
    expect(calls).toEqual([]);
    expect(audit.events).toEqual([]);
  });
});
