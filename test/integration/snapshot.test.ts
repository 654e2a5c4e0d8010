/**
 * Snapshot and restore across real node processes: a 3-node cluster with 1,000 users' secrets made through the
 * secret server and 100 operator register values is snapshotted with the CLI, every data directory is wiped, a new cluster with the
 * same management key is restored with the CLI, and every value, every user's secret and the key records are back.
 * A cluster with another management key and callers without the admin scope are refused.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { hashOperatorToken } from '../../src/http/operator-auth.js';
import { TestCluster } from '../helpers/cluster.js';
import { runCli, stopAll } from '../helpers/node-process.js';
import { SecretFixture } from '../helpers/secret-fixture.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
const BACKEND_TOKEN = 'backend-only-token';
const VALUES = 100;
const USERS = 1_000;
/** Exchanges in flight at once while the users' secrets are made and read back. */
const WIDTH = 16;
let users: SecretFixture;

beforeAll(async () => {
  users = await SecretFixture.start();
});
afterAll(async () => {
  await users.close();
});
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

const config = () => ({
  ...users.config(),
  operatorTokens: [{ name: 'backend', hash: hashOperatorToken(BACKEND_TOKEN), scopes: ['backend'] }],
});

/** The user's secret (hex) as node `i`'s secret server answers it (asked again while the node sheds load), or why it did not. */
async function secretOf(cluster: TestCluster, i: number, subject: string): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const answer = await users.secret(cluster.url(i), subject).catch((err: Error) => err.message);
    if (!answer.includes(': 503 ') || attempt >= 10) return answer;
    await new Promise((r) => setTimeout(r, 100 * attempt));
  }
}

/** Runs `op` on 0…n−1, `width` at a time. */
async function inBatches<T>(n: number, width: number, op: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let at = 0; at < n; at += width)
    out.push(...(await Promise.all(Array.from({ length: Math.min(width, n - at) }, (_, k) => op(at + k)))));
  return out;
}

const numberedValue = (i: number) => `value ${i} ${'x'.repeat(i % 50)}`;

/** `op` again while the node sheds load (503 overloaded): the test machine has two cores for three nodes. */
async function unshed<T extends { status: number }>(op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const result = await op();
    if (result.status !== 503 || attempt >= 10) return result;
    await new Promise((r) => setTimeout(r, 100 * attempt));
  }
}

async function startThree(cluster: TestCluster, message: string): Promise<void> {
  await cluster.startAll();
  await cluster.waitForMap(message);
  // a user of its own per cluster: the restored one must not find a secret made here in its way
  await waitFor(async () => (await secretOf(cluster, 2, `warm-up ${message}`)).length === 64, {
    timeoutMs: 20_000,
    message: `${message}: the secret server answers`,
  });
}

describe('snapshot and restore', () => {
  it("restores 1,000 users' secrets byte for byte, operator values and the key records into a wiped cluster with the same management key", async () => {
    const cluster = await TestCluster.create(3, dirs, config());
    await startThree(cluster, 'the first cluster');
    const puts = await inBatches(VALUES, 10, (i) =>
      unshed(() => cluster.getOrCreate(i % 3, `v-${i}`, numberedValue(i))),
    );
    expect(puts.filter((p) => p.status !== 200)).toEqual([]);
    const secrets = await inBatches(USERS, WIDTH, (u) => secretOf(cluster, u % 3, `user-${u}`));
    expect(secrets.filter((s) => s.length !== 64)).toEqual([]);
    expect(new Set(secrets).size).toBe(USERS);
    const kids = await cluster.kids(0, '/.well-known/jwks.json');
    // a client registered at run time is part of the snapshot
    const registered = await cluster.request(0, '/v1/registrations/clients/app', {
      method: 'PUT',
      body: { jwksUri: 'https://app.example/jwks', grants: ['client_credentials'] },
    });
    expect(registered.status).toBe(201);

    const file = join(dirs.make(), 'cluster.snapshot');
    const token = ['--token', cluster.adminToken];
    const saved = await runCli(['snapshot', '--node', cluster.url(1), '--out', file, ...token, '--json']);
    expect(saved.code, saved.stderr).toBe(0);
    const summary = JSON.parse(saved.stdout) as { registers: number; keys: number };
    expect(summary.registers).toBeGreaterThanOrEqual(VALUES + USERS);
    expect(summary.keys).toBeGreaterThanOrEqual(kids.length);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file).includes(Buffer.from('value 7'))).toBe(false);
    const again = await runCli(['snapshot', '--node', cluster.url(1), '--out', file, ...token]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('never overwrites');

    for (const i of [0, 1, 2]) await cluster.stop(i);
    for (const i of [0, 1, 2]) cluster.wipe(i);
    await startThree(cluster, 'the wiped cluster');
    expect((await cluster.read(0, 'v-7')).status).toBe(404);

    const restored = await runCli(['restore', '--node', cluster.url(2), '--in', file, ...token, '--json']);
    expect(restored.code, restored.stderr).toBe(0);
    const report = JSON.parse(restored.stdout) as {
      registers: { written: number; conflicting: number };
      keys: { written: number };
      registrations: { written: number; equal: number; conflicting: number };
    };
    expect(report.registers.written).toBeGreaterThanOrEqual(VALUES + USERS);
    expect(report.registers.conflicting).toBe(0);
    // the registrations come back through the cluster's own log: the file's resource server was imported by the new cluster too
    expect(report.registrations).toMatchObject({ written: 1, conflicting: 0 });
    expect(report.registrations.equal).toBeGreaterThanOrEqual(1);
    expect((await cluster.request(1, '/v1/registrations/clients/app')).body).toMatchObject({
      record: { jwksUri: 'https://app.example/jwks' },
      by: 'restore',
    });
    expect(report.keys.written).toBeGreaterThanOrEqual(kids.length);

    const reads = await inBatches(VALUES, 10, async (i) => ({
      i,
      read: await unshed(() => cluster.read(i % 3, `v-${i}`)),
    }));
    expect(
      reads.filter(({ i, read }) => read.status !== 200 || read.value !== numberedValue(i)).map(({ i }) => i),
    ).toEqual([]);
    expect(await inBatches(USERS, WIDTH, (u) => secretOf(cluster, (u + 1) % 3, `user-${u}`))).toEqual(secrets);
    for (const i of [0, 1, 2]) {
      await waitFor(
        async () => {
          const now = await cluster.kids(i, '/.well-known/jwks.json');
          return kids.every((kid) => now.includes(kid));
        },
        { timeoutMs: 15_000, message: `node ${i} publishes the restored keys` },
      );
    }

    // a second restore changes nothing: every value is already there
    const twice = await runCli(['restore', '--node', cluster.url(0), '--in', file, ...token, '--json']);
    expect(twice.code, twice.stderr).toBe(0);
    expect(JSON.parse(twice.stdout)).toMatchObject({
      registers: { written: 0, conflicting: 0 },
      registrations: { written: 0, conflicting: 0 },
    });

    // callers without the admin scope get nothing
    expect((await fetch(`${cluster.url(0)}/v1/snapshot`)).status).toBe(401);
    expect(
      (await fetch(`${cluster.url(0)}/v1/snapshot`, { headers: { authorization: `Bearer ${BACKEND_TOKEN}` } })).status,
    ).toBe(403);
    const post = await fetch(`${cluster.url(0)}/v1/restore`, {
      method: 'POST',
      headers: { authorization: `Bearer ${BACKEND_TOKEN}`, 'content-type': 'application/octet-stream' },
      body: readFileSync(file),
    });
    expect(post.status).toBe(403);
    const refusedCli = await runCli(['restore', '--node', cluster.url(0), '--in', file, '--token', BACKEND_TOKEN]);
    expect(refusedCli.code).toBe(1);
    expect(refusedCli.stderr).toContain('403');

    // a cluster under another management key refuses the file and writes nothing
    for (const i of [0, 1, 2]) await cluster.stop(i);
    for (const i of [0, 1, 2]) cluster.wipe(i);
    const otherKey = ManagementKey.generate();
    for (const i of [0, 1, 2]) await cluster.start(i, { managementKey: otherKey });
    await cluster.waitForMap('the cluster under another key');
    const refused = await runCli(['restore', '--node', cluster.url(0), '--in', file, ...token]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('another management key');
    expect((await cluster.read(1, 'v-7')).status).toBe(404);
  }, 240_000);
});
