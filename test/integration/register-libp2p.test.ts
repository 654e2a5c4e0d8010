import { generateKeyPair } from '@libp2p/crypto/keys';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterNetwork } from '../../src/cluster/network-guard.js';
import { createHost, type Host } from '../../src/cluster/host.js';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { silentLogger } from '../../src/log.js';
import { Acceptor } from '../../src/register/acceptor.js';
import { Libp2pRegisterTransport } from '../../src/register/libp2p-transport.js';
import { Proposer } from '../../src/register/proposer.js';
import { MemoryAcceptorStore } from '../helpers/sim-network.js';
import { waitFor } from '../helpers/wait-for.js';

const hosts: Host[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => Promise.resolve(h.stop()).catch(() => undefined)));
});

const realTimers = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString());

async function threeReplicas(
  epochs: number[] = [1, 1, 1],
  bad: string[] = [],
  mk = ManagementKey.parse(ManagementKey.generate(), 'test'),
) {
  const ids = ['aaaaaaaaaaaaaaa1', 'aaaaaaaaaaaaaaa2', 'aaaaaaaaaaaaaaa3'];
  const peers = new Map<string, string>();
  // what membership would know: each member bound to the peer that signs its heartbeats, plus a stranger it heard
  const bound = new Map<string, string>();
  const identify = (peer: string) => bound.get(peer) ?? [...peers].find(([, p]) => p === peer)?.[0];
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    const host = await createHost({
      privateKey: await generateKeyPair('Ed25519'),
      network: new ClusterNetwork({ keys: [mk], clusterId: 'reg', log: silentLogger() }),
      listen: { host: '127.0.0.1', port: 0 },
      isBanned: () => false,
      log: silentLogger(),
    });
    await host.start();
    hosts.push(host);
    peers.set(ids[i]!, host.peerId.toString());
    const transport = new Libp2pRegisterTransport({
      host,
      protocol: '/keymesh/reg/register/1',
      nodeId: ids[i]!,
      acceptor: new Acceptor(new MemoryAcceptorStore()),
      peerOf: (id) => peers.get(id),
      epoch: () => epochs[i]!,
      onBadMessage: (peer) => bad.push(peer),
      log: silentLogger(),
      identify,
      mayPropose: (id) => ids.includes(id),
    });
    await transport.register();
    nodes.push({
      host,
      transport,
      proposer: new Proposer({
        nodeId: ids[i]!,
        transport,
        timers: realTimers,
        settings: { requestTimeoutMs: 500, deadlineMs: 3_000 },
      }),
    });
  }
  for (const n of nodes.slice(1)) await n.host.dial(nodes[0]!.host.getMultiaddrs()[0]!);
  await nodes[1]!.host.dial(nodes[2]!.host.getMultiaddrs()[0]!);
  return { ids, nodes, peers, bound, mk };
}

/** A peer that holds the network key (the management key) but was never a member, claiming to be `claims`. */
async function stranger(mk: ManagementKey, claims: string, peers: Map<string, string>) {
  const host = await createHost({
    privateKey: await generateKeyPair('Ed25519'),
    network: new ClusterNetwork({ keys: [mk], clusterId: 'reg', log: silentLogger() }),
    listen: { host: '127.0.0.1', port: 0 },
    isBanned: () => false,
    log: silentLogger(),
  });
  await host.start();
  hosts.push(host);
  const transport = new Libp2pRegisterTransport({
    host,
    protocol: '/keymesh/reg/register/1',
    nodeId: claims,
    acceptor: new Acceptor(new MemoryAcceptorStore()),
    peerOf: (id) => peers.get(id),
    epoch: () => 1,
    onBadMessage: () => undefined,
    log: silentLogger(),
  });
  return { host, transport };
}

describe('register over libp2p', () => {
  it('answers no register request of a peer that is not a bound member, and strikes one that claims a member', async () => {
    const bad: string[] = [];
    const { ids, nodes, peers, bound, mk } = await threeReplicas([1, 1, 1], bad);
    await nodes[0]!.proposer.getOrCreate('user/alice', ids, Buffer.from('alice-secret'));
    // a throwaway peer with the network key: never heard, so never answered
    const rogue = await stranger(mk, 'aaaaaaaaaaaaaaa9', peers);
    await rogue.host.dial(nodes[0]!.host.getMultiaddrs()[0]!);
    await expect(rogue.transport.request(ids[0]!, { t: 'read', key: 'user/alice' }, 2_000)).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
    });
    // heard (bound to its own id), it is still no member: it learns nothing and cannot vote anything in
    bound.set(rogue.host.peerId.toString(), 'aaaaaaaaaaaaaaa9');
    await expect(rogue.transport.request(ids[0]!, { t: 'read', key: 'user/alice' }, 2_000)).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
    });
    await expect(
      rogue.transport.request(ids[0]!, { t: 'prepare', key: 'user/alice', ballot: [2 ** 40, 'zz'] }, 2_000),
    ).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    expect(bad).toEqual([]);
    // claiming to be a member from a peer bound to another node is an impostor's message: the stream is reset, a strike
    const impostor = await stranger(mk, ids[1]!, peers);
    bound.set(impostor.host.peerId.toString(), 'aaaaaaaaaaaaaaa8');
    await impostor.host.dial(nodes[0]!.host.getMultiaddrs()[0]!);
    await expect(impostor.transport.request(ids[0]!, { t: 'read', key: 'user/alice' }, 2_000)).rejects.toThrow();
    await waitFor(() => bad.includes(impostor.host.peerId.toString()), { message: 'the impostor was reported' });
    expect(text(await nodes[1]!.proposer.read('user/alice', ids))).toBe('alice-secret');
  });

  it('refuses a ballot round beyond the bound as malformed, so no member can poison the rounds', async () => {
    const bad: string[] = [];
    const { ids, nodes } = await threeReplicas([1, 1, 1], bad);
    await expect(
      nodes[1]!.transport.request(ids[0]!, { t: 'prepare', key: 'k', ballot: [2 ** 53 - 1, ids[1]!] }, 2_000),
    ).rejects.toThrow();
    await waitFor(() => bad.length > 0, { message: 'the malformed prepare was reported' });
    expect(text(await nodes[0]!.proposer.getOrCreate('k', ids, Buffer.from('fine')))).toBe('fine');
  });

  it('chooses one value when every node creates the same key at once', async () => {
    const { ids, nodes } = await threeReplicas();
    const results = await Promise.all(
      nodes.map((n, i) => n.proposer.getOrCreate('user/alice', ids, Buffer.from(`secret-from-${i}`))),
    );
    expect(new Set(results.map(text)).size).toBe(1);
    expect(text(await nodes[2]!.proposer.read('user/alice', ids))).toBe(text(results[0]));
    expect(await nodes[0]!.proposer.read('user/nobody', ids)).toBeUndefined();
  });

  it('keeps working with one replica down and refuses with two down, keeping the value', async () => {
    const { ids, nodes } = await threeReplicas();
    const first = text(await nodes[0]!.proposer.getOrCreate('k', ids, Buffer.from('first')));
    await nodes[2]!.host.stop();
    expect(text(await nodes[0]!.proposer.getOrCreate('k', ids, Buffer.from('second')))).toBe(first);
    expect(text(await nodes[1]!.proposer.getOrCreate('k2', ids, Buffer.from('x')))).toBe('x');
    await nodes[1]!.host.stop();
    // the first create's fast round left its value on its own replica, where a later read may finish it; the fast
    // round is then paused, and the next create proposes nothing
    await expect(nodes[0]!.proposer.getOrCreate('k3', ids, Buffer.from('y'))).rejects.toMatchObject({
      code: 'ERR_OUTCOME_UNKNOWN',
    });
    await expect(nodes[0]!.proposer.getOrCreate('k4', ids, Buffer.from('z'))).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
    });
    // a replica holding the commit marker serves the chosen value without a round; anything else needs a majority
    expect(text(await nodes[0]!.proposer.read('k', ids))).toBe(first);
    await expect(nodes[0]!.proposer.read('never-written', ids)).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
  });

  it('resets the stream of a malformed frame and names its sender, and the sender can still talk after', async () => {
    const bad: string[] = [];
    const { ids, nodes } = await threeReplicas([1, 1, 1], bad);
    const { lpStream } = await import('@libp2p/utils');
    const stream = await nodes[1]!.host.dialProtocol(nodes[0]!.host.peerId, '/keymesh/reg/register/1');
    const lp = lpStream(stream);
    await lp.write(new Uint8Array([0, 0, 0, 1, 0xc1, 0xc1]));
    await waitFor(() => bad.length > 0, { message: 'the malformed frame was reported' });
    expect(bad).toEqual([nodes[1]!.host.peerId.toString()]);
    await expect(lp.read({ signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
    expect(text(await nodes[1]!.proposer.getOrCreate('after', ids, Buffer.from('fine')))).toBe('fine');
  });

  it('refuses requests of another cluster-map epoch', async () => {
    const { ids, nodes } = await threeReplicas([1, 2, 2]);
    // only its own replica (epoch 1) took the fast value: the outcome is unknown, and nothing more was taken
    await expect(nodes[0]!.proposer.getOrCreate('k', ids, Buffer.from('v'))).rejects.toMatchObject({
      code: 'ERR_OUTCOME_UNKNOWN',
    });
    expect(text(await nodes[1]!.proposer.getOrCreate('k', ids, Buffer.from('v2')))).toBe('v2');
  });
});
