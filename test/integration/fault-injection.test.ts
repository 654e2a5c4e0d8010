/**
 * The fault-injection hook on real nodes: a partition set through `PUT /v1/faults` cuts every connection between
 * the sides (the isolated node is dead to the others, and the register on it has no majority), and healing
 * restores both; a node started without `--allow-fault-injection` refuses the hook.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Ring } from '../../src/cluster-map/ring.js';
import { FAST_CLUSTER_CONFIG, TestCluster } from '../helpers/cluster.js';
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
    const peers = await Promise.all(
      [0, 1, 2].map(async (i) => ((await cluster.request(i, '/v1/cluster')).body as unknown as ClusterView).peerId),
    );
    const stateOf = async (i: number, name: string) =>
      ((await cluster.request(i, '/v1/cluster')).body as unknown as ClusterView).members.find((m) => m.name === name)
        ?.state;
    const name3 = cluster.nodes[2]!.name;

    const cut = (i: number, blockPeers: string[]) =>
      cluster.request(i, '/v1/faults', { method: 'PUT', body: { blockPeers } });
    expect((await cut(2, [peers[0]!, peers[1]!])).status).toBe(200);
    await cut(0, [peers[2]!]);
    await cut(1, [peers[2]!]);
    await waitFor(async () => (await stateOf(0, name3)) === 'dead' && (await stateOf(1, name3)) === 'dead', {
      timeoutMs: 10_000,
      message: 'the isolated node is dead to the others',
    });
    expect((await cluster.getOrCreate(0, 'cut-majority', 'a')).status).toBe(200);
    expect((await cluster.getOrCreate(2, 'cut-minority', 'b')).status).toBe(503);

    await Promise.all([0, 1, 2].map((i) => cut(i, [])));
    await waitFor(async () => (await stateOf(0, name3)) === 'alive', {
      timeoutMs: 10_000,
      message: 'the healed node is alive again',
    });
    await waitFor(async () => (await cluster.read(2, 'cut-majority')).value === 'a', {
      timeoutMs: 10_000,
      message: 'the healed node reads what the majority wrote',
    });
  });

  it('keeps a node alive on its peers while its clock steps 3 s back and forth (heartbeats are ordered by sequence)', async () => {
    const cluster = await TestCluster.create(3, dirs);
    for (let i = 0; i < 3; i++) await cluster.start(i, { args: ['--allow-fault-injection'] });
    await cluster.waitForMap('a map of three members');
    const name3 = cluster.nodes[2]!.name;
    const stateOf = async (i: number) =>
      ((await cluster.request(i, '/v1/cluster')).body as unknown as ClusterView).members.find((m) => m.name === name3)
        ?.state;
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

  it('answers register operations within their deadline while the replicas it would ask first are silent', async () => {
    const cluster = await TestCluster.create(4, dirs, { ...FAST_CLUSTER_CONFIG, bootstrapExpect: 4 });
    for (let i = 0; i < 4; i++) await cluster.start(i, { args: ['--allow-fault-injection'] });
    await cluster.waitForMap('a map of four members');
    const peers = await Promise.all(
      [0, 1, 2, 3].map(async (i) => ((await cluster.request(i, '/v1/cluster')).body as unknown as ClusterView).peerId),
    );
    const mute = (i: number, mutePeers: string[]) =>
      cluster.request(i, '/v1/faults', { method: 'PUT', body: { mutePeers } });
    // node 0 hears nodes 1 and 2 only through gossip (alive, relayed), its requests to them vanish; node 3 answers
    await Promise.all([mute(0, [peers[1]!, peers[2]!]), mute(1, [peers[0]!]), mute(2, [peers[0]!])]);
    const timed = async <T>(run: () => Promise<T>) => {
      const started = Date.now();
      const result = await run();
      return { result, ms: Date.now() - started };
    };
    // a forwarded operation's bound: the replica's deadline (5 s) plus one request timeout (1 s)
    const BOUND_MS = 6_000 + 1_000;
    // keys node 3 holds a replica of (the others have no reachable majority from node 0); node 0 forwards those
    // it is not a replica of, and the replicas it would ask first are the silent ones
    const map = (await cluster.mapOf(0)).map!;
    const ring = new Ring(map.members.map((m) => m.nodeId));
    const idOf = (i: number) => map.members.find((m) => m.name === cluster.nodes[i]!.name)!.nodeId;
    const keys = Array.from({ length: 200 }, (_, n) => `silent-${n}`).filter((k) =>
      ring.replicas(`kv/${k}`, 3).includes(idOf(3)),
    );
    const forwarded = keys.filter((k) => !ring.replicas(`kv/${k}`, 3).includes(idOf(0))).slice(0, 6);
    const local = keys.filter((k) => ring.replicas(`kv/${k}`, 3).includes(idOf(0))).slice(0, 2);
    expect(forwarded.length).toBe(6);
    for (const key of [...forwarded, ...local]) {
      const { result, ms } = await timed(() => cluster.getOrCreate(0, key, `v-${key}`));
      expect(result, JSON.stringify(result)).toMatchObject({ status: 200, value: `v-${key}` });
      expect(ms).toBeLessThan(BOUND_MS);
    }
    for (const key of [...forwarded, ...local]) expect((await cluster.read(3, key)).value).toBe(`v-${key}`);
    expect(await cluster.memberState(0, cluster.nodes[1]!.name)).toBe('alive');

    // every other node silent: an answer still comes within the bound, and it says so
    await mute(0, [peers[1]!, peers[2]!, peers[3]!]);
    await mute(3, [peers[0]!]);
    const { result, ms } = await timed(() => cluster.getOrCreate(0, forwarded[0]!.replace('silent', 'alone'), 'x'));
    expect(result.status).toBe(503);
    expect(ms).toBeLessThan(BOUND_MS);
    await Promise.all([0, 1, 2, 3].map((i) => mute(i, [])));
    await waitFor(async () => (await cluster.getOrCreate(0, 'after-heal', 'y')).status === 200, {
      timeoutMs: 15_000,
      message: 'the register serves node 0 again once healed',
    });
  });

  it('is refused by a node started without --allow-fault-injection', async () => {
    const cluster = await TestCluster.create(1, dirs, { bootstrapExpect: 1, replicationFactor: 1 });
    await cluster.start(0);
    const res = await cluster.request(0, '/v1/faults', { method: 'PUT', body: { clockOffsetMs: 60_000 } });
    expect(res.status).toBe(404);
    expect(res.body['error_description']).toMatch(/--allow-fault-injection/);
  });
});
