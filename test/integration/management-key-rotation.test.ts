/**
 * Management-key rotation on real node processes: install, use and remove through the CLI while clients fetch
 * secrets, each step refused until every member reports the one before, a data-directory scan that finds only the
 * new epoch afterwards, and a node holding only the removed key that can neither start on its data nor join.
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { NETWORK_MISMATCH } from '../../src/cluster/network-guard.js';
import type { RotationStatus } from '../../src/management-key/rotation.js';
import { epochsAtRest } from '../../src/management-key/scan.js';
import { TestCluster } from '../helpers/cluster.js';
import { runCli, startNode, startNodeExpectingFailure, stopAll } from '../helpers/node-process.js';
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

async function started(n: number): Promise<TestCluster> {
  const cluster = await TestCluster.create(n, dirs, fixture.config());
  await cluster.startAll();
  await cluster.waitForMap('genesis');
  await waitFor(async () => (await fixture.exchange(cluster.url(n - 1), 'warm-up')).status === 200, {
    timeoutMs: 20_000,
    message: 'the secret server answers',
  });
  return cluster;
}

function cli(cluster: TestCluster, i: number, args: string[], env: Record<string, string> = {}) {
  return runCli(['management-key', ...args, '--node', cluster.url(i), '--json'], {
    KEYMESH_ADMIN_TOKEN: cluster.adminToken,
    ...env,
  });
}

async function status(cluster: TestCluster, i: number): Promise<RotationStatus> {
  return cluster.admin<RotationStatus>(i, '/v1/management-keys');
}

/** Every epoch found at rest in a stopped node's data directory. */
const scan = (dataDir: string, key: ManagementKey) => epochsAtRest(join(dataDir, 'data', 'db'), key);

describe('management-key rotation', () => {
  it('installs, uses and removes a key online while clients fetch secrets, refusing each step until every member took the one before', async () => {
    const cluster = await started(3);
    const users = ['alice', 'bob', 'carol'];
    const before = new Map(
      await Promise.all(users.map(async (u) => [u, await fixture.secret(cluster.url(0), u)] as const)),
    );

    // clients keep asking every node for secrets throughout
    const statuses: number[] = [];
    const failures: string[] = [];
    let stop = false;
    const clients = (async () => {
      for (let n = 0; !stop; n++) {
        const answer = await fixture.exchange(cluster.url(n % 3), users[n % 3]!);
        statuses.push(answer.status);
        if (answer.status !== 200)
          failures.push(`${new Date().toISOString()} node ${n % 3}: ${answer.status} ${JSON.stringify(answer.body)}`);
      }
    })();

    const steps: string[] = [];
    const mark = (step: string) => steps.push(`${new Date().toISOString()} ${step}`);
    mark('install');
    const install = await cli(cluster, 0, ['install']);
    expect(install.code, install.stderr).toBe(0);
    const installed = JSON.parse(install.stdout) as RotationStatus & { epoch: number; key: string };
    expect(installed.epoch).toBe(2);
    expect(installed.key).toMatch(/^2\.[A-Za-z0-9_-]{43}$/);
    expect(installed.epochs.find((e) => e.epoch === 2)).toMatchObject({ installed: 3, sealing: 0 });
    // a second install before this rotation finished is refused; the same key again is taken as it is
    expect((await cli(cluster, 1, ['install'])).stderr).toMatch(/409.*rotation is unfinished/);
    expect((await cli(cluster, 1, ['install'], { KEYMESH_NEW_MANAGEMENT_KEY: installed.key })).code).toBe(0);

    const early = await cli(cluster, 1, ['remove', '1']);
    expect(early.code).not.toBe(0);
    expect(early.stderr).toMatch(/409.*removal of epoch 1 refused: 0 of 3 members/);

    mark('use');
    const use = await cli(cluster, 2, ['use', '2']);
    expect(use.code, use.stderr).toBe(0);
    await waitFor(async () => (await status(cluster, 1)).epochs.find((e) => e.epoch === 2)?.resealed === 3, {
      timeoutMs: 30_000,
      message: 'every member re-sealed under epoch 2',
    });

    mark('remove');
    const removed = await cli(cluster, 1, ['remove', '1']);
    mark('removed');
    expect(removed.code, removed.stderr + removed.stdout).toBe(0);
    const after = await status(cluster, 0);
    expect(after.epochs).toEqual([expect.objectContaining({ epoch: 2, installed: 3, sealing: 3, resealed: 3 })]);
    expect(after.nodes.every((n) => n.report?.removed.includes(1))).toBe(true);

    // the cluster still talks under the new key only: a new secret is replicated, old ones unchanged
    await waitFor(async () => (await fixture.exchange(cluster.url(1), 'dave')).status === 200, {
      timeoutMs: 20_000,
      message: 'the cluster answers after the removal',
    });
    stop = true;
    await clients;
    expect(statuses.length).toBeGreaterThan(10);
    expect(failures, steps.join('\n')).toEqual([]);
    for (const i of [0, 1, 2])
      for (const u of users) expect(await fixture.secret(cluster.url(i), u)).toBe(before.get(u));

    // a node given only the removed key does not start on its data; with the new key it does, and still serves
    await cluster.stop(2);
    const refused = await startNodeExpectingFailure({
      dataDir: join(cluster.nodes[2]!.dataDir, 'data'),
      managementKey: cluster.managementKey,
      ports: cluster.nodes[2]!.ports,
      config: {
        ...fixture.config(),
        name: 'node-3',
        clusterId: 'test',
        seeds: [`127.0.0.1:${cluster.nodes[0]!.ports.p2p}`],
      },
    });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr + refused.stdout).toContain('ERR_MANAGEMENT_KEY_REMOVED');
    await cluster.start(2, { managementKey: installed.key });
    await waitFor(async () => (await fixture.exchange(cluster.url(2), 'erin')).status === 200, {
      timeoutMs: 20_000,
      message: 'the restarted node answers',
    });
    for (const u of users) expect(await fixture.secret(cluster.url(2), u)).toBe(before.get(u));

    // a fresh node with only the old key shares no network key with the cluster
    const outsiderDir = dirs.make('keymesh-outsider-');
    const outsider = await startNode({
      dataDir: join(outsiderDir, 'data'),
      managementKey: cluster.managementKey,
      ports: { http: 0, p2p: 0 },
      config: {
        ...fixture.config(),
        name: 'outsider',
        clusterId: 'test',
        seeds: [`127.0.0.1:${cluster.nodes[0]!.ports.p2p}`],
      },
    });
    await waitFor(() => outsider.stdout().includes(NETWORK_MISMATCH), {
      timeoutMs: 15_000,
      message: 'the outsider is refused at the network',
    });
    expect(
      (await cluster.admin<{ members: Array<{ name: string }> }>(0, '/v1/cluster')).members.map((m) => m.name),
    ).not.toContain('outsider');
    await outsider.stop();

    // at rest, every value of every node is under epoch 2
    for (const i of [0, 1, 2]) await cluster.stop(i);
    const key = ManagementKey.parse(installed.key, 'test');
    for (const node of cluster.nodes) expect(await scan(node.dataDir, key)).toEqual(new Set([2]));
  }, 180_000);

  it('finishes the re-seal on a member killed right after the switch and waits for a paused member before the removal', async () => {
    const cluster = await started(3);
    // enough records that a re-seal pass takes a while
    await Promise.all(
      Array.from({ length: 300 }, (_, n) =>
        cluster.getOrCreate(n % 3, `rotation-${n}`, Buffer.from(`value-${n}`).toString('base64url')),
      ),
    );
    const installed = await cluster.admin<{ epoch: number; key: string }>(0, '/v1/management-keys', {
      method: 'POST',
      body: {},
    });
    await cluster.admin(0, `/v1/management-keys/${installed.epoch}/use`, { method: 'POST' });
    await cluster.kill(1);
    // once the new key is in use, only it starts a node: the old one may be the leaked one
    const old = await startNodeExpectingFailure({
      dataDir: join(cluster.nodes[1]!.dataDir, 'data'),
      managementKey: cluster.managementKey,
      ports: cluster.nodes[1]!.ports,
      config: {
        ...fixture.config(),
        name: 'node-2',
        clusterId: 'test',
        seeds: [`127.0.0.1:${cluster.nodes[0]!.ports.p2p}`],
      },
    });
    expect(old.stderr + old.stdout).toContain('start it with the key of epoch 2');
    // with the new key it opens its data and resumes sealing again
    await cluster.start(1, { managementKey: installed.key });
    cluster.pause(2);
    const refused = await fetch(`${cluster.url(0)}/v1/management-keys/1`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${cluster.adminToken}` },
    });
    expect(refused.status).toBe(409);
    expect(((await refused.json()) as { error_description: string }).error_description).toMatch(/node-3 \(no answer\)/);
    cluster.resume(2);
    await waitFor(async () => (await status(cluster, 0)).epochs.find((e) => e.epoch === 2)?.resealed === 3, {
      timeoutMs: 40_000,
      message: 'every member re-sealed under epoch 2',
    });
    // as an operator would: the step again until the member that was paused answers every request in time
    await waitFor(
      async () => {
        const res = await fetch(`${cluster.url(0)}/v1/management-keys/1`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${cluster.adminToken}` },
        });
        return res.status === 200 && ((await res.json()) as { complete: boolean }).complete;
      },
      { timeoutMs: 60_000, message: 'the removal goes through once every member answers' },
    );
    // every value is still there, unchanged; a read may meet a busy replica right after the removal (a 503), so
    // each is asked until it answers, but an answer with another value fails at once
    for (let n = 0; n < 300; n += 37) {
      const expected = Buffer.from(`value-${n}`).toString('base64url');
      await waitFor(
        async () => {
          const answer = await cluster.read(n % 3, `rotation-${n}`);
          if (answer.status === 200) expect(answer.value).toBe(expected);
          return answer.status === 200;
        },
        { timeoutMs: 15_000, message: `rotation-${n} is read back on node ${(n % 3) + 1}` },
      );
    }
    for (const i of [0, 1, 2]) await cluster.stop(i);
    for (const node of cluster.nodes)
      expect(await scan(node.dataDir, ManagementKey.parse(installed.key, 'test'))).toEqual(new Set([2]));
  }, 180_000);
});
