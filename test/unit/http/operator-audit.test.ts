/**
 * Operator changes are recorded before they are made, naming the operator and never its token; when the line
 * cannot be written the change is refused (503 ERR_AUDIT_UNAVAILABLE) and nothing changes. JWKS and POP reads are
 * never audited: they are served with an audit file that cannot be written.
 */
import type { FastifyInstance } from 'fastify';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../../src/audit/audit-log.js';
import { FileAuditLog } from '../../../src/audit/file-audit-log.js';
import { MemoryAuditLog } from '../../../src/audit/memory-audit-log.js';
import { hashOperatorToken, OperatorAuth } from '../../../src/http/operator-auth.js';
import { buildHttpApp } from '../../../src/http/server.js';
import { makeKeyring, MINUTE, TEST_REALMS } from '../../helpers/keyring.js';
import { TempDirs } from '../../helpers/temp-dir.js';
import { testHttpDeps } from '../../helpers/http-deps.js';

const ADMIN = 'operator-token-of-alice';
const dirs = new TempDirs();
let app: FastifyInstance | undefined;
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  await app?.close();
  app = undefined;
  for (const stop of stops.splice(0)) await stop();
  dirs.cleanup();
});

async function setup(audit: AuditLog) {
  const ctx = await makeKeyring({ raw: { jwks: { maxAgeMs: 5 * MINUTE }, realms: TEST_REALMS } });
  await ctx.rotation.check();
  const deps = testHttpDeps(ctx, {
    auth: new OperatorAuth([{ name: 'alice', hash: hashOperatorToken(ADMIN), scopes: ['admin'] }]),
    audit,
  });
  app = buildHttpApp(deps);
  await app.ready();
  return { ...ctx, app };
}

const admin = { authorization: `Bearer ${ADMIN}` };

describe('operator audit', () => {
  it('records a forced rotation and a revocation with the operator name, before they are made', async () => {
    const audit = new MemoryAuditLog();
    const { app, keyring } = await setup(audit);
    const rotated = await app.inject({
      method: 'POST',
      url: '/v1/keys/rotate',
      headers: admin,
      payload: { use: 'sig' },
    });
    expect(rotated.statusCode).toBe(201);
    const kid = (rotated.json() as { kid: string }).kid;
    expect((await app.inject({ method: 'POST', url: `/v1/keys/${kid}/revoke`, headers: admin })).statusCode).toBe(200);
    expect(keyring.get(kid)?.revokedAt).toBeDefined();
    expect(audit.events).toEqual([
      expect.objectContaining({ event: 'key:rotate', operator: 'alice', realm: 'default', use: 'sig' }),
      expect.objectContaining({ event: 'key:revoke', operator: 'alice', kid }),
    ]);
    expect(audit.lines.join('\n')).not.toContain(ADMIN);
  });

  it('refuses an operator change with 503 ERR_AUDIT_UNAVAILABLE and changes nothing when the line cannot be written', async () => {
    const audit = new MemoryAuditLog();
    audit.failing = true;
    const { app, keyring } = await setup(audit);
    const before = keyring.list().length;
    const res = await app.inject({ method: 'POST', url: '/v1/keys/rotate', headers: admin, payload: { use: 'sig' } });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ error: 'temporarily_unavailable' });
    const kid = keyring.list()[0]!.kid;
    expect((await app.inject({ method: 'POST', url: `/v1/keys/${kid}/revoke`, headers: admin })).statusCode).toBe(503);
    expect(keyring.list().length).toBe(before);
    expect(keyring.get(kid)?.revokedAt).toBeUndefined();
  });

  it('serves JWKS and POP while the audit file cannot be written', async () => {
    const audit = new FileAuditLog({
      path: join(dirs.make(), 'no-such-dir', 'audit.log'),
      node: 'node-test',
      writeTimeoutMs: 100,
    });
    await audit.start();
    stops.push(() => audit.stop());
    const { app } = await setup(audit);
    const jwks = await app.inject('/.well-known/jwks.json');
    expect(jwks.statusCode).toBe(200);
    expect((jwks.json() as { keys: unknown[] }).keys.length).toBeGreaterThan(0);
    expect((await app.inject('/pop')).statusCode).toBe(200);
    expect(
      (await app.inject({ method: 'POST', url: '/v1/keys/rotate', headers: admin, payload: { use: 'sig' } }))
        .statusCode,
    ).toBe(503);
  });
});
