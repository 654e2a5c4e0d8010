/**
 * Registrations at run time on real node processes: a client added on node 1 is used on node 3 and refused
 * everywhere once deleted; two concurrent updates of one client, exactly one wins; a node down during changes
 * catches up after its restart and never serves what it served before the change; the config file is imported once
 * and a node whose file disagrees says so; registered trusted issuers and resource servers serve the secret server,
 * registered operator tokens the admin API, each realm only its own.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAST_CLUSTER_CONFIG, TestCluster } from '../helpers/cluster.js';
import { runCli, stopAll } from '../helpers/node-process.js';
import { SecretFixture } from '../helpers/secret-fixture.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
let fixture: SecretFixture;
beforeAll(async () => {
  fixture = await SecretFixture.start();
});
afterAll(async () => {
  await fixture.close();
});
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

const ISSUER = 'https://sts.example';
const REALMS = {
  default: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: ISSUER },
  partners: { ...FAST_CLUSTER_CONFIG.realms.default, issuer: `${ISSUER}/realms/partners` },
};
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

type Answer = { status: number; body: Record<string, unknown>; etag: string | null };

async function call(
  cluster: TestCluster,
  i: number,
  method: string,
  path: string,
  o: { body?: unknown; headers?: Record<string, string>; token?: string } = {},
): Promise<Answer> {
  const res = await fetch(`${cluster.url(i)}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${o.token ?? cluster.adminToken}`,
      ...(o.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...o.headers,
    },
    ...(o.body === undefined ? {} : { body: JSON.stringify(o.body) }),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, etag: res.headers.get('etag') };
}

async function token(
  cluster: TestCluster,
  i: number,
  clientId: string,
  secret: string,
  realmPath = '',
): Promise<number> {
  const res = await fetch(`${cluster.url(i)}${realmPath}/token`, {
    method: 'POST',
    headers: { authorization: basic(clientId, secret) },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
    signal: AbortSignal.timeout(15_000),
  });
  await res.arrayBuffer();
  return res.status;
}

async function started(n: number, config: Record<string, unknown>): Promise<TestCluster> {
  const cluster = await TestCluster.create(n, dirs, config);
  await cluster.startAll();
  await cluster.waitForMap('a map of every member');
  await waitForPhase(cluster, [...Array(n).keys()]);
  return cluster;
}

async function waitForPhase(cluster: TestCluster, nodes: number[]): Promise<void> {
  for (const i of nodes) {
    await waitFor(async () => (await call(cluster, i, 'GET', '/v1/registrations')).body['phase'] === 'cluster', {
      timeoutMs: 30_000,
      message: `node ${i} follows the registrations log`,
    });
  }
}

const client = { grants: ['client_credentials'], audiences: ['https://api.example'] };

describe('registrations at run time', () => {
  it('adds a client on node 1 that node 3 honours, refuses it everywhere once deleted, and lets exactly one of two concurrent updates win', async () => {
    const cluster = await started(3, { ...FAST_CLUSTER_CONFIG, realms: REALMS });

    const created = await call(cluster, 0, 'PUT', '/v1/registrations/clients/app', {
      body: client,
      headers: { 'if-none-match': '*' },
    });
    expect(created).toMatchObject({
      status: 201,
      body: { kind: 'client', realm: 'default', id: 'app', record: { clientId: 'app', secrets: 1 } },
    });
    const secret = created.body['clientSecret'] as string;
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(created.body['record'])).not.toContain('hmac-sha256');
    await waitFor(async () => (await token(cluster, 2, 'app', secret)) === 200, {
      timeoutMs: 2_000,
      message: 'node 3 honours the client added on node 1',
    });
    expect(await token(cluster, 1, 'app', secret)).toBe(200);
    // shown once: reading it gives no secret and no hash
    const read = await call(cluster, 2, 'GET', '/v1/registrations/clients/app');
    expect(read.body).not.toHaveProperty('clientSecret');
    expect(JSON.stringify(read.body)).not.toMatch(/hmac-sha256|secretHash/);
    // per realm: the client of the default realm does not exist in realm partners
    expect(await token(cluster, 2, 'app', secret, '/realms/partners')).toBe(401);

    // two operators update the client against the same version on two nodes: one wins, the other is told
    const version = read.etag!;
    const [a, b] = await Promise.all([
      call(cluster, 0, 'PUT', '/v1/registrations/clients/app', {
        body: { ...client, scopes: ['a'] },
        headers: { 'if-match': version },
      }),
      call(cluster, 2, 'PUT', '/v1/registrations/clients/app', {
        body: { ...client, scopes: ['b'] },
        headers: { 'if-match': version },
      }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 409]);
    const loser = a.status === 409 ? a : b;
    expect(loser.body).toMatchObject({
      error: 'invalid_request',
      error_description: expect.stringMatching(/is at version \d+ now; nothing changed/),
    });
    const winner = a.status === 200 ? ['a'] : ['b'];
    for (const i of [0, 1, 2]) {
      await waitFor(
        async () =>
          JSON.stringify((await call(cluster, i, 'GET', '/v1/registrations/clients/app')).body['record']).includes(
            `"scopes":${JSON.stringify(winner)}`,
          ),
        { timeoutMs: 5_000, message: `node ${i} serves the winner` },
      );
    }
    // the update kept the secret it could not send back
    expect(await token(cluster, 1, 'app', secret)).toBe(200);

    // malformed registrations are refused with the dotted path and change nothing
    expect(
      await call(cluster, 1, 'PUT', '/v1/registrations/clients/bad', { body: { ...client, scopes: ['has space'] } }),
    ).toMatchObject({ status: 400, body: { error_description: expect.stringMatching(/^body\.scopes\.0: /) } });
    expect(
      await call(cluster, 1, 'PUT', '/v1/registrations/clients/bad', { body: { ...client, secret: 'plain' } }),
    ).toMatchObject({ status: 400, body: { error_description: expect.stringMatching(/^body: .*secret/) } });
    expect(
      await call(cluster, 1, 'PUT', '/v1/registrations/clients/bad?realm=nowhere', { body: client }),
    ).toMatchObject({ status: 400, body: { error_description: expect.stringMatching(/^query\.realm: /) } });
    expect(
      await call(cluster, 1, 'PUT', '/v1/registrations/clients/bad', { body: { ...client, claims: { sub: 'x' } } }),
    ).toMatchObject({ status: 400, body: { error_description: expect.stringMatching(/^body\.claims\.sub: /) } });
    expect(
      await call(cluster, 1, 'PUT', '/v1/registrations/clients/bad', {
        body: { ...client, jwksUri: 'http://keys.example/jwks' },
      }),
    ).toMatchObject({
      status: 400,
      body: { error_description: expect.stringMatching(/^body\.jwksUri: must be https/) },
    });
    expect(await call(cluster, 1, 'GET', '/v1/registrations/clients/bad')).toMatchObject({
      status: 404,
      body: { error: 'not_found' },
    });

    // deleted: refused on every node
    const deleted = await call(cluster, 1, 'DELETE', '/v1/registrations/clients/app');
    expect(deleted).toMatchObject({ status: 200, body: { deleted: true } });
    for (const i of [0, 1, 2])
      await waitFor(async () => (await token(cluster, i, 'app', secret)) === 401, {
        timeoutMs: 2_000,
        message: `node ${i} refuses the deleted client`,
      });
    // every node serves one version, and `GET /v1/cluster` shows it per member
    await waitFor(
      async () => {
        const members = (await call(cluster, 0, 'GET', '/v1/cluster')).body['members'] as Array<{
          registrationsVersion?: number;
        }>;
        return members.length === 3 && members.every((m) => m.registrationsVersion === deleted.body['version']);
      },
      { timeoutMs: 5_000, message: 'every member reports the version of the delete' },
    );
    const table = await runCli(['cluster', '--node', cluster.url(2)], { KEYMESH_ADMIN_TOKEN: cluster.adminToken });
    expect(table.stdout).toContain('REGISTRATIONS');
    for (const name of ['node-1', 'node-2', 'node-3'])
      expect(table.stdout).toMatch(new RegExp(`${name}\\s.*v${String(deleted.body['version'])}\\s*$`, 'm'));
    // the CLI's list, get and delete, and its conflict
    const env = { KEYMESH_ADMIN_TOKEN: cluster.adminToken };
    expect(
      (
        await runCli(
          [
            'clients',
            'put',
            'cli-app',
            '--node',
            cluster.url(0),
            '--create',
            '--wait',
            '--record',
            JSON.stringify({ ...client, jwksUri: 'https://app.example/jwks' }),
          ],
          env,
        )
      ).code,
    ).toBe(0);
    // --wait returned once every member serves it
    for (const i of [0, 1, 2])
      expect((await call(cluster, i, 'GET', '/v1/registrations/clients/cli-app')).status).toBe(200);
    const again = await runCli(
      ['clients', 'put', 'cli-app', '--node', cluster.url(1), '--create', '--record', JSON.stringify(client)],
      env,
    );
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/409 .*is at version \d+ now/);
    const list = await runCli(['clients', 'list', '--node', cluster.url(2), '--json'], env);
    expect(JSON.parse(list.stdout)).toMatchObject({
      items: [{ id: 'cli-app', record: { jwksUri: 'https://app.example/jwks' } }],
    });
    expect((await runCli(['clients', 'delete', 'cli-app', '--node', cluster.url(2)], env)).stdout).toContain(
      'deleted client cli-app',
    );
    expect((await runCli(['clients', 'get', 'cli-app', '--node', cluster.url(0)], env)).stderr).toMatch(/404/);
  });

  it('catches a node up after a restart, never serving a client it served before it was deleted', async () => {
    const cluster = await started(3, { ...FAST_CLUSTER_CONFIG, realms: REALMS });
    const first = await call(cluster, 0, 'PUT', '/v1/registrations/clients/old', { body: client });
    const oldSecret = first.body['clientSecret'] as string;
    await waitFor(async () => (await token(cluster, 2, 'old', oldSecret)) === 200, {
      timeoutMs: 5_000,
      message: 'node 3 serves the client',
    });

    await cluster.stop(2);
    expect((await call(cluster, 0, 'DELETE', '/v1/registrations/clients/old')).status).toBe(200);
    const added = await call(cluster, 1, 'PUT', '/v1/registrations/clients/new?realm=partners', { body: client });
    expect(added.status).toBe(201);
    const newSecret = added.body['clientSecret'] as string;

    await cluster.start(2);
    // from its first answer on, the restarted node never honours the deleted client
    const seen: number[] = [];
    await waitFor(
      async () => {
        seen.push(await token(cluster, 2, 'old', oldSecret));
        return (await token(cluster, 2, 'new', newSecret, '/realms/partners')) === 200;
      },
      { timeoutMs: 30_000, message: 'the restarted node serves the client added while it was down' },
    );
    expect(seen).not.toContain(200);
    expect(seen.every((s) => s === 401 || s === 503)).toBe(true);
    // the new client belongs to realm partners only
    expect(await token(cluster, 2, 'new', newSecret)).toBe(401);
  });

  it('imports the config file once, reports a node whose file disagrees, and serves registered issuers, resource servers and operators', {
    timeout: 90_000,
  }, async () => {
    const { trustedIssuers, resourceServers, ...withoutIdp } = fixture.config() as {
      trustedIssuers: unknown[];
      resourceServers: unknown[];
    } & Record<string, unknown>;
    const auditDir = dirs.make('keymesh-audit-');
    const audit = (i: number) => join(auditDir, `audit-${i}.log`);
    const cluster = await TestCluster.create(3, dirs, { ...withoutIdp, resourceServers });
    for (const i of [0, 1, 2]) await cluster.start(i, { config: { audit: { file: audit(i) } } });
    await cluster.waitForMap('a map of three');
    await waitForPhase(cluster, [0, 1, 2]);
    // the resource server came from the file (imported once, named by the node that did it); the IDP is not trusted yet
    await waitFor(
      async () =>
        ((await call(cluster, 1, 'GET', '/v1/registrations')).body['registrations'] as unknown[]).length === 1,
      { timeoutMs: 10_000, message: 'the file is imported' },
    );
    const listed = await call(cluster, 1, 'GET', '/v1/registrations');
    expect(listed.body).toMatchObject({
      phase: 'cluster',
      differences: [],
      registrations: [{ kind: 'resource-server', by: expect.stringMatching(/^config:node-/) }],
    });
    expect((await fixture.exchange(cluster.url(1), 'alice')).status).toBe(400);

    // an operator registers the IDP through the CLI on node 1; node 2 exchanges with it
    const put = await runCli(
      [
        'issuers',
        'put',
        trustedIssuers[0] ? (trustedIssuers[0] as { issuer: string }).issuer : '',
        '--json',
        '--node',
        cluster.url(0),
        '--record',
        JSON.stringify(trustedIssuers[0]),
      ],
      { KEYMESH_ADMIN_TOKEN: cluster.adminToken },
    );
    expect(put.code, put.stderr).toBe(0);
    await waitFor(async () => (await fixture.exchange(cluster.url(1), 'alice')).status === 200, {
      timeoutMs: 5_000,
      message: 'node 2 trusts the registered IDP',
    });

    // a registered operator token works on the other node, with its scope only, and grants no scope it lacks
    const op = await call(cluster, 0, 'PUT', '/v1/registrations/operators/deployer', { body: { scopes: ['admin'] } });
    expect(op.status).toBe(201);
    const opToken = op.body['token'] as string;
    await waitFor(async () => (await call(cluster, 1, 'GET', '/v1/registrations', { token: opToken })).status === 200, {
      timeoutMs: 5_000,
      message: 'node 2 accepts the registered operator',
    });
    expect(
      await call(cluster, 1, 'PUT', '/v1/registrations/operators/sneaky', {
        body: { scopes: ['backend'] },
        token: opToken,
      }),
    ).toMatchObject({ status: 403 });
    expect(
      await call(cluster, 1, 'PUT', '/v1/registrations/operators/admin', { body: { scopes: ['admin'] } }),
    ).toMatchObject({ status: 400 });
    const cli = await runCli(
      ['clients', 'put', 'svc', '--json', '--node', cluster.url(1), '--record', JSON.stringify(client)],
      { KEYMESH_ADMIN_TOKEN: opToken },
    );
    expect(cli.code, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ id: 'svc', clientSecret: expect.any(String) });
    // the audit log names who changed what
    const lines = [audit(0), audit(1)]
      .flatMap((f) => readFileSync(f, 'utf8').trim().split('\n'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['event'] === 'registration:change');
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ operator: 'admin', op: 'put', kind: 'issuer' }),
        expect.objectContaining({ operator: 'deployer', op: 'put', kind: 'client', id: 'svc' }),
      ]),
    );

    // a node whose file names another resource server starts, serves the cluster's, and says its file disagrees
    await cluster.stop(1);
    await cluster.start(1, {
      config: {
        audit: { file: audit(1) },
        resourceServers: [{ ...(resourceServers[0] as object), userTokenAudiences: ['other'] }],
      },
    });
    await waitForPhase(cluster, [1]);
    const report = await call(cluster, 1, 'GET', '/v1/registrations');
    expect(report.body['differences']).toEqual([
      expect.objectContaining({ kind: 'resource-server', cluster: 'differs' }),
    ]);
    await waitFor(async () => (await fixture.exchange(cluster.url(1), 'bob')).status === 200, {
      timeoutMs: 10_000,
      message: "node 2 serves the cluster's resource server",
    });
  });
});
