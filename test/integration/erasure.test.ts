/**
 * Erasing a user's secret (GDPR Art. 17) on a real 3-node cluster: through the route on one node, every node then
 * answers 410 for that user, never the old secret and never a new one; the CLI; an unknown user; a replica down
 * during the erasure that gets the tombstone through repair; the route's refusals; the audit line.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { userRef } from '../../src/audit/events.js';
import { hashOperatorToken } from '../../src/http/operator-auth.js';
import { TestCluster } from '../helpers/cluster.js';
import { runCli, stopAll } from '../helpers/node-process.js';
import { IDP, SecretFixture } from '../helpers/secret-fixture.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
const BACKEND_TOKEN = 'a-backend-only-operator-token';
let fx: SecretFixture;

beforeAll(async () => {
  fx = await SecretFixture.start();
});
afterAll(async () => {
  await fx.close();
});
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

async function started(options: { auditOn?: number } = {}): Promise<{ cluster: TestCluster; auditFile: string }> {
  const cluster = await TestCluster.create(3, dirs, {
    ...fx.config(),
    operatorTokens: [{ name: 'backend-only', hash: hashOperatorToken(BACKEND_TOKEN), scopes: ['backend'] }],
  });
  const auditFile = join(cluster.nodes[0]!.dataDir, 'audit.log');
  for (let i = 0; i < 3; i++)
    await cluster.start(i, i === options.auditOn ? { config: { audit: { file: auditFile } } } : {});
  await cluster.waitForMap('genesis');
  await waitFor(async () => (await fx.exchange(cluster.url(2), 'warm-up')).status === 200, {
    timeoutMs: 15_000,
    message: 'the secret server answers',
  });
  return { cluster, auditFile };
}

const erase = (cluster: TestCluster, i: number, body: unknown, token = cluster.adminToken) =>
  fetch(`${cluster.url(i)}/v1/secrets/erase`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }).then(async (res) => ({ status: res.status, body: (await res.json()) as Record<string, unknown> }));

/** Every node answers `subject`'s exchange with 410 `secret_erased`. */
async function expectErasedEverywhere(cluster: TestCluster, subject: string, nodes = [0, 1, 2]): Promise<void> {
  for (const i of nodes)
    expect(await fx.exchange(cluster.url(i), subject), `node ${i}`).toMatchObject({
      status: 410,
      body: { error: 'secret_erased' },
    });
}

describe("erasing a user's secret on a cluster", () => {
  it('erases through one node: every node answers 410 from then on, never the old secret nor a new one; audited, also by the CLI', async () => {
    const { cluster, auditFile } = await started({ auditOn: 1 });
    expect(await fx.secret(cluster.url(0), 'alice')).toHaveLength(64);

    expect(await erase(cluster, 1, { issuer: IDP, subject: 'alice' })).toEqual({
      status: 200,
      body: { erased: true, user: userRef(IDP, 'alice'), knownIssuer: true },
    });
    for (let round = 0; round < 3; round++) await expectErasedEverywhere(cluster, 'alice');
    // erasing again is harmless
    expect((await erase(cluster, 2, { issuer: IDP, subject: 'alice' })).status).toBe(200);

    // a user who never had a secret, through the CLI: none is ever created
    const cli = await runCli(['erase-secret', '--node', cluster.url(2), '--issuer', IDP, '--subject', 'carol'], {
      KEYMESH_ADMIN_TOKEN: cluster.adminToken,
    });
    expect(cli.code, cli.stderr).toBe(0);
    expect(cli.stdout).toContain(`erased the secret of user ${userRef(IDP, 'carol')}`);
    await expectErasedEverywhere(cluster, 'carol');

    // the audit line was written (before the erasure), names the operator and the hashed user, never the user
    const lines = readFileSync(auditFile, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l['event'] === 'secret:erase')).toEqual([
      expect.objectContaining({ operator: 'admin', user: userRef(IDP, 'alice') }),
    ]);
    expect(readFileSync(auditFile, 'utf8')).not.toContain('alice');
    expect((await runCli(['audit', 'verify', auditFile])).code).toBe(0);
  }, 120_000);

  it('refuses an erasure without an admin token or with malformed input, naming the field, and erases nothing', async () => {
    const { cluster } = await started();
    const secret = await fx.secret(cluster.url(0), 'bob');
    expect(
      (
        await fetch(`${cluster.url(1)}/v1/secrets/erase`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ issuer: IDP, subject: 'bob' }),
        })
      ).status,
    ).toBe(401);
    expect((await erase(cluster, 1, { issuer: IDP, subject: 'bob' }, 'not-a-known-token')).status).toBe(401);
    expect((await erase(cluster, 1, { issuer: IDP, subject: 'bob' }, BACKEND_TOKEN)).status).toBe(403);
    const bad = async (body: unknown, field: string) => {
      const r = await erase(cluster, 1, body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body).toMatchObject({
        error: 'invalid_request',
        error_description: expect.stringContaining(`body field ${field}:`),
      });
    };
    await bad({ issuer: '', subject: 'bob' }, 'issuer');
    await bad({ issuer: IDP, subject: 'b\u0000ob' }, 'subject');
    await bad({ issuer: IDP }, 'subject');
    await bad({ issuer: 'x'.repeat(513), subject: 'bob' }, 'issuer');
    expect((await erase(cluster, 1, { issuer: IDP, subject: 'bob', extra: 1 })).status).toBe(400);
    // an issuer that is not a trusted one is a typo until the operator says otherwise: nothing is erased
    const typo = await erase(cluster, 1, { issuer: `${IDP}/`, subject: 'bob' });
    expect(typo.status).toBe(400);
    expect(typo.body).toMatchObject({
      error_description: expect.stringContaining('body field issuer: not one of the trusted issuers'),
    });
    expect(
      (await erase(cluster, 1, { issuer: 'https://other-idp.example', subject: 'bob', force: true })).body,
    ).toMatchObject({ erased: true, knownIssuer: false });
    // bob still has his secret
    expect(await fx.secret(cluster.url(2), 'bob')).toBe(secret);
  }, 120_000);

  it('brings the erasure to a replica that was down, through repair, and never gives it a new secret', async () => {
    const { cluster } = await started();
    const secret = await fx.secret(cluster.url(2), 'dave');
    await cluster.kill(2);
    expect((await erase(cluster, 0, { issuer: IDP, subject: 'dave' })).status).toBe(200);
    await expectErasedEverywhere(cluster, 'dave', [0, 1]);
    // node 2 comes back holding the old secret, and answers from its own copy alone (no quorum read), so only the
    // tombstone's arrival through repair turns its answer into 410; until then it may serve the old secret, never a new one
    await cluster.start(2, { args: ['--allow-fault-injection'], env: { KEYMESH_FAULT_BREAK_REPLICATION: '1' } });
    const served = new Set<string>();
    await waitFor(
      async () => {
        if ((await fx.exchange(cluster.url(2), 'dave')).status === 410) return true;
        served.add(await fx.secret(cluster.url(2), 'dave'));
        return false;
      },
      { timeoutMs: 30_000, intervalMs: 250, message: 'node 2 answers 410 once repair brought it the tombstone' },
    );
    expect([...served].filter((s) => s !== secret)).toEqual([]);
    // and as a normal member again, every node answers 410
    await cluster.stop(2);
    await cluster.start(2);
    await cluster.waitForMap('node 2 back');
    await expectErasedEverywhere(cluster, 'dave');
  }, 120_000);
});
