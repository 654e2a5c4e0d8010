/**
 * The fault-injection hook on real nodes: a partition set through `PUT /v1/faults` cuts every connection between
 * the sides (the isolated node is dead to the others, and the register on it has no majority), and healing
 * restores both; a node started without `--allow-fault-injection` refuses the hook.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestCluster } from '../helpers/cluster.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
afterEach(async () => {
  await stopAll();
  dirs.cleanup();
});

interface ClusterView {
  peerId: string;
  members: Array<{ name: string; state: string }>;
}

describe('fault injection', () => {
  it('partitions a node away from the others and heals it', async () => {
    const cluster = await TestCluster.create(3, dirs);
    for (let i = 0; i < 3; i++) await cluster.start(i, { args: ['--allow-fault-injection'] });
    await cluster.waitForMap('a map of three members');
    const peers = await Promise.all([0, 1, 2].map(async (i) => ((await cluster.request(i, '/v1/cluster')).body as unknown as ClusterView).peerId));
    const stateOf = async (i: number, name: string) => ((await cluster.request(i, '/v1/cluster')).body as unknown as ClusterView).members.find((m) => m.name === name)?.state;
    const name3 = cluster.nodes[2]!.name;

    const cut = (i: number, blockPeers: string[]) => cluster.request(i, '/v1/faults', { method: 'PUT', body: { blockPeers } });
    expect((await cut(2, [peers[0]!, peers[1]!])).status).toBe(200);
    await cut(0, [peers[2]!]);
    await cut(1, [peers[2]!]);
    await waitFor(async () => (await stateOf(0, name3)) === 'dead' && (await stateOf(1, name3)) === 'dead', { timeoutMs: 10_000, message: 'the isolated node is dead to the others' });
    expect((await cluster.getOrCreate(0, 'cut-majority', 'a')).status).toBe(200);
    expect((await cluster.getOrCreate(2, 'cut-minority', 'b')).status).toBe(503);

    await Promise.all([0, 1, 2].map((i) => cut(i, [])));
    await waitFor(async () => (await stateOf(0, name3)) === 'alive', { timeoutMs: 10_000, message: 'the healed node is alive again' });
    await waitFor(async () => (await cluster.read(2, 'cut-majority')).value === 'a', { timeoutMs: 10_000, message: 'the healed node reads what the majority wrote' });
  });

  it('keeps a node alive on its peers while its clock steps 3 s back and forth (heartbeats are ordered by sequence)', async () => {
    const cluster = await TestCluster.create(3, dirs);
    for (let i = 0; i < 3; i++) await cluster.start(i, { args: ['--allow-fault-injection'] });
    await cluster.waitForMap('a map of three members');
    const name3 = cluster.nodes[2]!.name;
    const stateOf = async (i: number) => ((await cluster.request(i, '/v1/cluster')).body as unknown as ClusterView).members.find((m) => m.name === name3)?.state;
    const states: Array<string | undefined> = [];
    for (const clockOffsetMs of [-3_000, 3_000, 0]) {
      expect((await cluster.request(2, '/v1/faults', { method: 'PUT', body: { clockOffsetMs } })).status).toBe(200);
      // longer than deadAfterMs: a peer ordering heartbeats by the sender's clock would have declared it dead
      const until = Date.now() + 2_500;
      while (Date.now() < until) {
        states.push(await stateOf(0), await stateOf(1));
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    expect(states.filter((state) => state === 'dead')).toEqual([]);
  });

  it('is refused by a node started without --allow-fault-injection', async () => {
    const cluster = await TestCluster.create(1, dirs, { bootstrapExpect: 1, replicationFactor: 1 });
    await cluster.start(0);
    const res = await cluster.request(0, '/v1/faults', { method: 'PUT', body: { clockOffsetMs: 60_000 } });
    expect(res.status).toBe(404);
    expect(res.body['error_description']).toMatch(/--allow-fault-injection/);
  });
});
