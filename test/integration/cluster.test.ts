import { CompactEncrypt, importJWK, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { runCli, stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

interface KeysView {
  keys: Array<{ kid: string; use: string; state: string; publishedOn: { nodes: number; of: number } }>;
}

describe('a three-node cluster', () => {
  it('converges to one key set, spreads a rotation, and decrypts on any node what was encrypted to another', async () => {
    const cluster = await TestCluster.create(3, dirs);
    await cluster.startAll();
    await cluster.waitForAgreement('three nodes agree');

    const rotated = await cluster.admin<{ kid: string }>(2, '/v1/keys/rotate', {
      method: 'POST',
      body: { use: 'sig' },
    });
    for (const i of [0, 1])
      await waitFor(async () => (await cluster.kids(i, '/.well-known/jwks.json')).includes(rotated.kid), {
        message: `node ${i + 1} publishes the rotated key`,
      });
    await waitFor(
      async () =>
        (await cluster.admin<KeysView>(0, '/v1/keys')).keys.find((k) => k.kid === rotated.kid)?.publishedOn.nodes === 3,
      { message: 'published on 3 of 3' },
    );

    const pop = ((await (await fetch(`${cluster.url(0)}/pop`)).json()) as { keys: JWK[] }).keys[0]!;
    const jwe = await new CompactEncrypt(Buffer.from('sent to node 1'))
      .setProtectedHeader({ alg: pop.alg!, enc: 'A256GCM', kid: pop.kid! })
      .encrypt(await importJWK(pop, pop.alg));
    const res = await cluster.admin<{ plaintext: string }>(1, '/v1/decrypt', { method: 'POST', body: { jwe } });
    expect(Buffer.from(res.plaintext, 'base64url').toString()).toBe('sent to node 1');

    const actives = await Promise.all(
      [0, 1, 2].map(async (i) =>
        (await cluster.admin<KeysView>(i, '/v1/keys')).keys
          .filter((k) => k.state === 'active')
          .map((k) => k.kid)
          .sort(),
      ),
    );
    expect(actives[1]).toEqual(actives[0]);
    expect(actives[2]).toEqual(actives[0]);

    const table = await runCli(['cluster', '--node', cluster.url(1)], { KEYMESH_ADMIN_TOKEN: cluster.adminToken });
    expect(table.code).toBe(0);
    expect(table.stdout).toContain('digests agree');
    for (const name of ['node-1', 'node-2', 'node-3']) expect(table.stdout).toMatch(new RegExp(`${name}\\s+alive`));
  });

  it('lets a node that was down during two rotations and a revocation catch up after restart', async () => {
    const cluster = await TestCluster.create(3, dirs);
    await cluster.startAll();
    await cluster.waitForAgreement('three nodes agree');
    await cluster.stop(2);

    const a = await cluster.admin<{ kid: string }>(0, '/v1/keys/rotate', { method: 'POST', body: { use: 'enc' } });
    const b = await cluster.admin<{ kid: string }>(1, '/v1/keys/rotate', { method: 'POST', body: { use: 'sig' } });
    const victim = (await cluster.kids(0, '/.well-known/jwks.json'))[0]!;
    await cluster.admin(1, `/v1/keys/${victim}/revoke`, { method: 'POST' });

    await cluster.start(2);
    await cluster.waitForAgreement('the restarted node caught up');
    // at agreement every node holds the same key set (the digests agree) and serves the same document, so that
    // document lists both new keys. The enc key may be held back there (the restarted node came back around its
    // activation time and some node does not yet see every member publish it): it is then listed as pending, after
    // the key still in use, never left out.
    const pop = await cluster.kids(2);
    if (!pop.includes(a.kid) || !pop.includes(b.kid)) {
      // the document alone does not say why a key is missing from it: name every node's state of every key
      const states = await Promise.all(
        [0, 1, 2].map(async (i) =>
          (await cluster.admin<KeysView>(i, '/v1/keys')).keys.map((k) => `${k.kid.slice(0, 6)}:${k.use}:${k.state}`),
        ),
      );
      const short = (kids: string[]) => kids.map((k) => k.slice(0, 6)).join(',');
      expect.fail(`node-3 served ${short(pop)} without ${short([a.kid, b.kid])}; keys: ${JSON.stringify(states)}`);
    }
    expect(pop).not.toContain(victim);
    const revoked = (await cluster.admin<KeysView>(2, '/v1/keys')).keys.find((k) => k.kid === victim);
    expect(revoked?.state).toBe('revoked');
  });

  it('joins a seed that starts last, whatever the start order', async () => {
    const cluster = await TestCluster.create(3, dirs);
    await cluster.start(2);
    await cluster.start(1);
    expect((await cluster.admin<{ members: unknown[] }>(1, '/v1/cluster')).members.length).toBeGreaterThanOrEqual(1);
    await cluster.start(0);
    await cluster.waitForAgreement('late seed joined');
  });

  it('agrees again after a node is killed with SIGKILL and restarted, which peers first declare dead', async () => {
    const cluster = await TestCluster.create(3, dirs);
    await cluster.startAll();
    await cluster.waitForAgreement('three nodes agree');
    await cluster.kill(1);
    await waitFor(async () => (await cluster.memberState(0, 'node-2')) === 'dead', {
      message: 'node-2 dead on node-1',
    });
    await cluster.start(1);
    await cluster.waitForAgreement('agree after restart');
  });

  it('ends concurrent forced rotations on two nodes with one active key everywhere', async () => {
    const cluster = await TestCluster.create(3, dirs);
    await cluster.startAll();
    await cluster.waitForAgreement('three nodes agree');
    await Promise.all([
      cluster.admin(0, '/v1/keys/rotate', { method: 'POST', body: { use: 'sig' } }),
      cluster.admin(2, '/v1/keys/rotate', { method: 'POST', body: { use: 'sig' } }),
    ]);
    await cluster.waitForAgreement('rotations spread');
    await waitFor(
      async () => {
        const actives = await Promise.all(
          [0, 1, 2].map(async (i) =>
            (await cluster.admin<KeysView>(i, '/v1/keys')).keys
              .filter((k) => k.use === 'sig' && k.state === 'active')
              .map((k) => k.kid),
          ),
        );
        return actives.every((a) => a.length === 1 && a[0] === actives[0]![0]) && actives[0]![0] !== undefined;
      },
      { timeoutMs: 15_000, message: 'one active signing key everywhere after both forced keys activate' },
    );
  });
});

describe('cluster membership and the activation gate', () => {
  it('holds a new key back while a member is paused, and activates it once the member answers', async () => {
    const cluster = await TestCluster.create(3, dirs, {
      membership: { heartbeatIntervalMs: 100, suspectAfterMs: 500, deadAfterMs: 60_000 },
      jwks: { maxAgeMs: 1_000 },
      clockSkewMs: 1_000,
      realms: {
        default: {
          keys: { sig: { rotationPeriodMs: 3_600_000, prePublishMs: 2_000, retireAfterMs: 600_000 } },
          tokens: { maxLifetimeMs: 60_000 },
        },
      },
    });
    await cluster.startAll();
    await cluster.waitForAgreement('three nodes agree');
    const paused = cluster.nodes[2]!.process!.child;
    paused.kill('SIGSTOP');
    try {
      const rotated = await cluster.admin<{ kid: string; activateAt: string }>(0, '/v1/keys/rotate', {
        method: 'POST',
        body: { use: 'sig' },
      });
      await waitFor(() => Date.now() > Date.parse(rotated.activateAt) + 1_000, {
        timeoutMs: 10_000,
        message: 'activation time passed',
      });
      const held = (await cluster.admin<KeysView>(0, '/v1/keys')).keys.find((k) => k.kid === rotated.kid)!;
      expect(held.state).toBe('pending');
      expect(held.publishedOn).toEqual({ nodes: 2, of: 3 });
      paused.kill('SIGCONT');
      await waitFor(
        async () =>
          (await cluster.admin<KeysView>(0, '/v1/keys')).keys.find((k) => k.kid === rotated.kid)?.state === 'active',
        { timeoutMs: 10_000, message: 'activated once the paused member published it' },
      );
    } finally {
      paused.kill('SIGCONT');
    }
    await cluster.waitForAgreement('everyone agrees after the pause');
  });

  it('activates a held-back key once the paused member is declared dead', async () => {
    const cluster = await TestCluster.create(3, dirs);
    await cluster.startAll();
    await cluster.waitForAgreement('three nodes agree');
    const paused = cluster.nodes[2]!.process!.child;
    paused.kill('SIGSTOP');
    try {
      const rotated = await cluster.admin<{ kid: string }>(0, '/v1/keys/rotate', {
        method: 'POST',
        body: { use: 'enc' },
      });
      await waitFor(async () => (await cluster.memberState(0, 'node-3')) === 'dead', {
        message: 'node-3 declared dead',
      });
      await waitFor(
        async () =>
          (await cluster.admin<KeysView>(0, '/v1/keys')).keys.find((k) => k.kid === rotated.kid)?.state === 'active',
        { timeoutMs: 10_000, message: 'activated with 2 of 3 once the paused member is dead' },
      );
      expect((await cluster.kids(0))[0]).toBe(rotated.kid);
    } finally {
      paused.kill('SIGCONT');
    }
    await cluster.waitForAgreement('everyone agrees after the pause');
  });
});
