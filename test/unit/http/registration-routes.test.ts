/**
 * `/v1/registrations` in-process, over a real registry and registrations log on an in-memory write-once register:
 * admin only, every input validated before anything is recorded, compare-and-set answered with 409, a generated
 * secret shown once and only on a private channel, no scope granted that the operator lacks, every change audited
 * before it is made (and not made when it cannot be), and no hash ever answered.
 */
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryAuditLog } from '../../../src/audit/memory-audit-log.js';
import { hashOperatorToken, OperatorAuth } from '../../../src/http/operator-auth.js';
import { buildHttpApp } from '../../../src/http/server.js';
import { silentLogger } from '../../../src/log.js';
import { RegistrationLog, type LogRegister } from '../../../src/registrations/log.js';
import { Registry } from '../../../src/registrations/registry.js';
import { makeKeyring, MINUTE, TEST_REALMS } from '../../helpers/keyring.js';
import { waitFor } from '../../helpers/wait-for.js';
import { testHttpDeps } from '../../helpers/http-deps.js';

const ALICE = 'operator-token-of-alice'; // admin
const BOB = 'operator-token-of-bob'; // backend
const ROOT = 'operator-token-of-root'; // every scope
const BODY_LIMIT = 2048;
let app: FastifyInstance | undefined;
let registry: Registry | undefined;
afterEach(async () => {
  await app?.close();
  registry?.stop();
  app = undefined;
  registry = undefined;
});

/** A write-once register in memory. */
function memoryRegister(): LogRegister {
  const values = new Map<string, Uint8Array>();
  return {
    getOrCreate: async (key, candidate) => (values.has(key) ? values : values.set(key, candidate)).get(key)!,
    read: async (key) => values.get(key),
  };
}

async function setup() {
  const ctx = await makeKeyring({
    raw: { jwks: { maxAgeMs: 5 * MINUTE }, realms: TEST_REALMS, http: { bodyLimitBytes: BODY_LIMIT } },
  });
  const log = new RegistrationLog(memoryRegister());
  const reg = new Registry({
    log,
    config: ctx.config,
    node: 'node-test',
    store: { get: async () => undefined, put: async () => undefined },
    logger: silentLogger(),
    pollMs: 60_000,
  });
  registry = reg;
  await reg.load();
  reg.start();
  await waitFor(() => reg.phase === 'cluster', { timeoutMs: 10_000, message: 'the registry follows the log' });
  const audit = new MemoryAuditLog();
  const deps = testHttpDeps(ctx, {
    auth: new OperatorAuth([
      { name: 'alice', hash: hashOperatorToken(ALICE), scopes: ['admin'] },
      { name: 'bob', hash: hashOperatorToken(BOB), scopes: ['backend'] },
      { name: 'root', hash: hashOperatorToken(ROOT), scopes: ['admin', 'backend', 'trust'] },
    ]),
    audit,
    registry: reg,
  });
  app = buildHttpApp(deps);
  await app.ready();
  const a = app;
  const call = async (
    method: InjectOptions['method'],
    url: string,
    o: { token?: string; payload?: unknown; headers?: Record<string, string>; remoteAddress?: string } = {},
  ) => {
    const res = await a.inject({
      method,
      url,
      ...(o.payload === undefined ? {} : { payload: o.payload as InjectOptions['payload'] }),
      ...(o.remoteAddress ? { remoteAddress: o.remoteAddress } : {}),
      headers: {
        ...(o.token === undefined ? {} : { authorization: `Bearer ${o.token}` }),
        ...(o.payload === undefined ? {} : { 'content-type': 'application/json' }),
        ...o.headers,
      },
    });
    return {
      status: res.statusCode,
      body: res.json() as Record<string, unknown>,
      text: res.body,
      etag: res.headers['etag'],
    };
  };
  return { app: a, log, registry: reg, audit, call };
}

const CLIENT = { grants: ['client_credentials'], audiences: ['https://api.example'], scopes: ['read'] };
const APP = '/v1/registrations/clients/app';

describe('the registration routes', () => {
  it('answer only an admin token: none is 401, a backend-only token 403, and nothing is recorded or changed', async () => {
    const { call, log, audit } = await setup();
    const version = log.version;
    const routes = [
      ['GET', '/v1/registrations'],
      ['GET', '/v1/registrations/clients'],
      ['GET', APP],
      ['PUT', APP],
      ['DELETE', APP],
      ['POST', `${APP}/secret`],
    ] as const;
    for (const [method, url] of routes) {
      const payload = method === 'PUT' ? CLIENT : undefined;
      expect((await call(method, url, { payload })).status, `${method} ${url}`).toBe(401);
      expect((await call(method, url, { payload, token: 'not-a-known-token' })).status, `${method} ${url}`).toBe(401);
      expect((await call(method, url, { payload, token: BOB })).status, `${method} ${url}`).toBe(403);
    }
    expect(log.version).toBe(version);
    expect(audit.events).toEqual([]);
  });

  it('refuse a malformed path, query, precondition or body with 400 naming what is wrong, before anything is recorded', async () => {
    const { call, log, audit } = await setup();
    const version = log.version;
    const bad = async (
      method: InjectOptions['method'],
      url: string,
      payload?: unknown,
      headers?: Record<string, string>,
    ) => {
      const res = await call(method, url, { token: ALICE, payload, ...(headers ? { headers } : {}) });
      expect(res.status, `${method} ${url} ${JSON.stringify(headers ?? {})}`).toBe(400);
      return String(res.body['error_description']);
    };
    expect(await bad('GET', '/v1/registrations/widgets')).toMatch(/path/);
    expect(await bad('PUT', '/v1/registrations/widgets/x', CLIENT)).toMatch(/path/);
    expect(await bad('PUT', `${APP}?realm=nowhere`, CLIENT)).toMatch(/^query\.realm/);
    expect(await bad('PUT', `${APP}?realm=Not%20A%20Realm`, CLIENT)).toMatch(/query/);
    expect(await bad('PUT', '/v1/registrations/operators/carol?realm=default2', { scopes: ['admin'] })).toMatch(
      /^query\.realm/,
    );
    expect(await bad('PUT', APP, CLIENT, { 'if-match': 'garbage' })).toMatch(/^headers\.if-match/);
    expect(await bad('PUT', APP, CLIENT, { 'if-match': '"1"', 'if-none-match': '*' })).toMatch(/^headers: .*not both/);
    expect(await bad('PUT', APP, CLIENT, { 'if-none-match': '"1"' })).toMatch(/^headers\.if-none-match/);
    expect(await bad('PUT', APP, { ...CLIENT, scopes: ['has space'] })).toMatch(/^body\.scopes\.0: /);
    expect(await bad('PUT', APP, { ...CLIENT, clientId: 'other' })).toMatch(/^body\.clientId: /);
    expect(await bad('PUT', APP, { ...CLIENT, secret: 'my-own-secret-value' })).toMatch(/^body/);
    expect(await bad('PUT', APP, 'null')).toMatch(/^body: /);
    expect(await bad('PUT', APP, '[]')).toMatch(/^body: /);
    expect(await bad('PUT', '/v1/registrations/operators/admin', { scopes: ['admin'] })).toMatch(/^path\.id/);
    expect(log.version).toBe(version);
    expect(audit.events).toEqual([]);
  });

  it('refuse a body over http.bodyLimitBytes with 413, recording nothing', async () => {
    const { call, log, audit } = await setup();
    const version = log.version;
    const res = await call('PUT', APP, {
      token: ALICE,
      payload: { ...CLIENT, claims: { note: 'x'.repeat(2 * BODY_LIMIT) } },
    });
    expect(res.status).toBe(413);
    expect(log.version).toBe(version);
    expect(audit.events).toEqual([]);
  });

  it('create a client with a secret shown once, keep it on a change, rotate it, and never answer a hash', async () => {
    const { call, log } = await setup();
    const created = await call('PUT', APP, { token: ALICE, payload: CLIENT });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      kind: 'client',
      realm: 'default',
      id: 'app',
      version: log.version,
      record: { clientId: 'app', secrets: 1 },
      clientSecret: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/),
    });
    expect(created.etag).toBe(`"${log.version}"`);
    const hash = (log.get('client', 'default', 'app')!.record as { secretHash: string }).secretHash;

    const changed = await call('PUT', APP, {
      token: ALICE,
      payload: { ...CLIENT, scopes: ['read', 'write'] },
      headers: { 'if-match': created.etag! },
    });
    expect(changed.status).toBe(200);
    expect(changed.body).not.toHaveProperty('clientSecret');
    expect(log.get('client', 'default', 'app')?.record).toMatchObject({ scopes: ['read', 'write'], secretHash: hash });

    const rotated = await call('POST', `${APP}/secret`, { token: ALICE, payload: { keepPrevious: true } });
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({ record: { secrets: 2 }, clientSecret: expect.any(String) });
    expect((log.get('client', 'default', 'app')!.record as { secretHashes: string[] }).secretHashes[1]).toBe(hash);
    const appVersion = log.version;

    expect(
      (await call('PUT', '/v1/registrations/operators/svc', { token: ROOT, payload: { scopes: ['backend'] } })).status,
    ).toBe(201);
    for (const url of [
      '/v1/registrations',
      '/v1/registrations/clients',
      APP,
      '/v1/registrations/operators',
      '/v1/registrations/operators/svc',
    ]) {
      const read = await call('GET', url, { token: ALICE });
      expect(read.status, url).toBe(200);
      expect(read.text, url).not.toMatch(/hmac-sha256|sha256:|clientSecret|"token"/);
    }
    const item = await call('GET', APP, { token: ALICE });
    expect(item.body).toMatchObject({ version: appVersion, by: 'alice', record: { secrets: 2 } });
    expect(item.etag).toBe(`"${appVersion}"`);
    const secretOfRs = await call('POST', '/v1/registrations/resource-servers/nope/secret', { token: ALICE });
    expect(secretOfRs.status).toBe(404);
  });

  it('answer a compare-and-set that lost with 409 naming the current version, and an unknown id with 404, changing nothing', async () => {
    const { call, log } = await setup();
    const v = Number((await call('PUT', APP, { token: ALICE, payload: CLIENT })).body['version']);
    const exists = await call('PUT', APP, { token: ALICE, payload: CLIENT, headers: { 'if-none-match': '*' } });
    expect(exists.status).toBe(409);
    expect(exists.body['error_description']).toMatch(new RegExp(`at version ${v}\\b`));
    expect(
      (await call('PUT', APP, { token: ALICE, payload: CLIENT, headers: { 'if-match': `"${v - 1}"` } })).status,
    ).toBe(409);
    expect(
      (
        await call('PUT', '/v1/registrations/clients/ghost', {
          token: ALICE,
          payload: CLIENT,
          headers: { 'if-match': '"7"' },
        })
      ).body['error_description'],
    ).toMatch(/does not exist/);
    expect((await call('DELETE', APP, { token: ALICE, headers: { 'if-match': `"${v - 1}"` } })).status).toBe(409);
    expect(log.get('client', 'default', 'app')?.version).toBe(v);

    expect(
      (await call('PUT', APP, { token: ALICE, payload: CLIENT, headers: { 'if-match': `W/"${v}"` } })).status,
    ).toBe(200);
    const deleted = await call('DELETE', APP, { token: ALICE, headers: { 'if-match': `"${log.version}"` } });
    expect(deleted.body).toMatchObject({ deleted: true, version: log.version });
    const version = log.version;
    for (const [method, url] of [
      ['DELETE', APP],
      ['GET', APP],
      ['POST', `${APP}/secret`],
      ['DELETE', '/v1/registrations/operators/never'],
    ] as const) {
      const res = await call(method, url, { token: ALICE });
      expect(res.status, `${method} ${url}`).toBe(404);
    }
    expect(log.version).toBe(version);
  });

  it('never answer a generated secret over plain HTTP to a caller off loopback, and record nothing then', async () => {
    const { call, log, audit } = await setup();
    const remote = { token: ALICE, remoteAddress: '192.0.2.7' };
    const refused = await call('PUT', APP, { ...remote, payload: CLIENT });
    expect(refused.status).toBe(403);
    expect(refused.text).not.toMatch(/clientSecret/);
    expect(log.get('client', 'default', 'app')).toBeUndefined();
    expect(
      (await call('PUT', '/v1/registrations/operators/carol', { ...remote, payload: { scopes: ['admin'] } })).status,
    ).toBe(403);
    expect(audit.events).toEqual([]);

    const hashed = await call('PUT', APP, { ...remote, payload: { ...CLIENT, jwksUri: 'https://app.example/jwks' } });
    expect(hashed.status).toBe(201);
    // a key-set client has no secret to renew
    expect(await call('POST', `${APP}/secret`, { token: ALICE, remoteAddress: '::1' })).toMatchObject({
      status: 400,
      body: { error_description: expect.stringMatching(/key set/) },
    });
    expect(
      (await call('PUT', '/v1/registrations/clients/local', { token: ALICE, remoteAddress: '::1', payload: CLIENT }))
        .status,
    ).toBe(201);
    const version = log.version;
    expect((await call('POST', '/v1/registrations/clients/local/secret', remote)).status).toBe(403);
    expect(log.version).toBe(version);
    expect(
      (await call('POST', '/v1/registrations/clients/local/secret', { token: ALICE, remoteAddress: '::1' })).status,
    ).toBe(200);
  });

  it('let an operator grant only the scopes it holds, and give a new operator a token whose hash is the one kept', async () => {
    const { call, log } = await setup();
    const version = log.version;
    const escalate = await call('PUT', '/v1/registrations/operators/carol', {
      token: ALICE,
      payload: { scopes: ['admin', 'backend'] },
    });
    expect(escalate.status).toBe(403);
    expect(escalate.body['error_description']).toMatch(/backend/);
    expect(
      (
        await call('PUT', '/v1/registrations/operators/carol', {
          token: ALICE,
          payload: { scopes: ['backend'], hash: hashOperatorToken('known-to-alice') },
        })
      ).status,
    ).toBe(403);
    expect(log.version).toBe(version);

    const carol = await call('PUT', '/v1/registrations/operators/carol', {
      token: ALICE,
      payload: { scopes: ['admin'] },
    });
    expect(carol.status).toBe(201);
    const token = String(carol.body['token']);
    expect(log.get('operator', 'default', 'carol')?.record).toEqual({
      name: 'carol',
      scopes: ['admin'],
      hash: hashOperatorToken(token),
    });
    expect(
      (await call('PUT', '/v1/registrations/operators/svc', { token: ROOT, payload: { scopes: ['backend'] } })).status,
    ).toBe(201);
    // nor take one over: a new token for, a change of or the deletion of an operator holding a scope it lacks
    const before = log.version;
    expect((await call('POST', '/v1/registrations/operators/svc/secret', { token: ALICE })).status).toBe(403);
    expect(
      (await call('PUT', '/v1/registrations/operators/svc', { token: ALICE, payload: { scopes: ['admin'] } })).status,
    ).toBe(403);
    expect((await call('DELETE', '/v1/registrations/operators/svc', { token: ALICE })).status).toBe(403);
    expect(log.version).toBe(before);
  });

  it('keep a key-set client on private_key_jwt when a change names no credential, and make it against the version read', async () => {
    const { call, log } = await setup();
    const created = await call('PUT', APP, {
      token: ALICE,
      payload: { ...CLIENT, jwksUri: 'https://app.example/jwks' },
    });
    expect(created.status).toBe(201);
    expect(created.body).not.toHaveProperty('clientSecret');
    const changed = await call('PUT', APP, {
      token: ALICE,
      payload: { ...CLIENT, scopes: ['read', 'write'] },
      remoteAddress: '192.0.2.7',
    });
    expect(changed.status).toBe(200);
    expect(changed.body).not.toHaveProperty('clientSecret');
    expect(log.get('client', 'default', 'app')?.record).toMatchObject({
      jwksUri: 'https://app.example/jwks',
      scopes: ['read', 'write'],
    });
    expect(log.get('client', 'default', 'app')?.record).not.toHaveProperty('secretHash');
    // If-Match: * means "as it is now"; on a registration that does not exist it is a conflict
    expect((await call('PUT', APP, { token: ALICE, payload: CLIENT, headers: { 'if-match': '*' } })).status).toBe(200);
    expect(
      (
        await call('PUT', '/v1/registrations/clients/none', {
          token: ALICE,
          payload: { ...CLIENT, jwksUri: 'https://a.example/j' },
          headers: { 'if-match': '*' },
        })
      ).status,
    ).toBe(409);
  });

  it('record registration:change with the operator before each change, and change nothing when the line cannot be written', async () => {
    const { call, log, audit } = await setup();
    const linesAtApply: number[] = [];
    log.onApplied(() => linesAtApply.push(audit.lines.length));
    expect((await call('PUT', APP, { token: ALICE, payload: CLIENT })).status).toBe(201);
    expect((await call('POST', `${APP}/secret`, { token: ALICE })).status).toBe(200);
    expect((await call('DELETE', APP, { token: ALICE })).status).toBe(200);
    expect((await call('PUT', APP, { token: ALICE, payload: CLIENT })).status).toBe(201);
    expect(linesAtApply).toEqual([1, 2, 3, 4]);
    const line = { event: 'registration:change', operator: 'alice', kind: 'client', realm: 'default', id: 'app' };
    expect(audit.events).toEqual(
      ['put', 'secret', 'delete', 'put'].map((op) => expect.objectContaining({ ...line, op })),
    );
    expect(audit.lines.join('\n')).not.toContain(ALICE);

    audit.failing = true;
    const version = log.version;
    const held = log.get('client', 'default', 'app');
    for (const [method, url, payload] of [
      ['PUT', APP, { ...CLIENT, scopes: [] }],
      ['PUT', '/v1/registrations/clients/new', CLIENT],
      ['POST', `${APP}/secret`, undefined],
      ['DELETE', APP, undefined],
    ] as const) {
      const res = await call(method, url, { token: ALICE, payload });
      expect(res.status, `${method} ${url}`).toBe(503);
      expect(res.text).not.toMatch(/clientSecret/);
    }
    expect(log.version).toBe(version);
    expect(log.get('client', 'default', 'app')).toEqual(held);
    expect(log.get('client', 'default', 'new')).toBeUndefined();
  });

  it('serve an id with / and : (an issuer URL) percent-encoded in the path', async () => {
    const { call, log } = await setup();
    const issuer = 'https://idp.example:8443/realms/a:b';
    const url = `/v1/registrations/issuers/${encodeURIComponent(issuer)}`;
    // whom the secret server trusts is changed only with scope trust
    expect(
      (await call('PUT', url, { token: ALICE, payload: { jwksUri: 'https://idp.example:8443/jwks' } })).status,
    ).toBe(403);
    const created = await call('PUT', url, { token: ROOT, payload: { jwksUri: 'https://idp.example:8443/jwks' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ kind: 'issuer', id: issuer, record: { issuer, realm: 'default' } });
    expect(log.get('issuer', 'default', issuer)).toBeDefined();
    expect((await call('GET', url, { token: ALICE })).body).toMatchObject({ id: issuer, record: { issuer } });
    expect((await call('GET', '/v1/registrations/issuers', { token: ALICE })).body['items']).toEqual([
      expect.objectContaining({ id: issuer }),
    ]);
    expect((await call('DELETE', url, { token: ALICE })).status).toBe(403);
    expect((await call('DELETE', url, { token: ROOT })).status).toBe(200);
    expect(log.get('issuer', 'default', issuer)).toBeUndefined();
  });
});
