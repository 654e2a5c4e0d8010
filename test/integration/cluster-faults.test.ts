import { gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import { noise } from '@libp2p/noise';
import { tcp } from '@libp2p/tcp';
import { lpStream } from '@libp2p/utils';
import { yamux } from '@libp2p/yamux';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import { pack } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { ClusterNetwork, NETWORK_MISMATCH } from '../../src/cluster/network-guard.js';
import { silentLogger } from '../../src/log.js';
import { ManagementKey } from '../../src/crypto/management-key.js';
import { TestCluster } from '../helpers/cluster.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { waitFor } from '../helpers/wait-for.js';

const dirs = new TempDirs();
const hosts: Libp2p[] = [];
afterEach(async () => {
  await stopAll();
  await Promise.all(hosts.splice(0).map((h) => Promise.race([h.stop(), new Promise((r) => setTimeout(r, 5_000))])));
  dirs.cleanup();
});

interface ClusterView {
  keySetDigest: string;
  members: Array<{ name: string; state: string }>;
}

/** A peer that holds the cluster's network key but not its good manners. */
async function hostilePeer(
  managementKey: string,
  signed: boolean,
): Promise<Libp2p<{ pubsub: ReturnType<ReturnType<typeof gossipsub>> }>> {
  const host = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: new ClusterNetwork({
      keys: [ManagementKey.parse(managementKey, 'test')],
      clusterId: 'test',
      log: silentLogger(),
    }).protector(),
    services: {
      identify: identify(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        globalSignaturePolicy: signed ? 'StrictSign' : 'StrictNoSign',
        scoreParams: { IPColocationFactorWeight: 0 },
        D: 2,
        Dlo: 1,
        Dhi: 4,
        Dout: 0,
      }),
    },
  });
  hosts.push(host);
  return host;
}

describe('cluster faults', () => {
  it('keeps a node with another management key out, and both sides say why', async () => {
    const cluster = await TestCluster.create(2, dirs);
    await cluster.start(0);
    const outsider = await cluster.start(1, { managementKey: ManagementKey.generate() });
    await waitFor(() => outsider.stdout().includes(NETWORK_MISMATCH), {
      message: 'the outsider logs the failed handshake',
    });
    await waitFor(() => cluster.nodes[0]!.process!.stdout().includes(NETWORK_MISMATCH), {
      message: 'the seed logs the failed handshake',
    });
    const view = await cluster.admin<ClusterView>(0, '/v1/cluster');
    expect(view.members.map((m) => m.name)).toEqual(['node-1']);
  });

  it('drops garbage, oversized, unsigned and replayed gossip and malformed sync requests, and bans the sender', async () => {
    const cluster = await TestCluster.create(3, dirs);
    await cluster.startAll();
    await cluster.waitForAgreement('three nodes agree');
    const seed = multiaddr(`/ip4/127.0.0.1/tcp/${cluster.nodes[0]!.ports.p2p}`);
    const keysTopic = 'keymesh/test/keys/1';
    const membersTopic = 'keymesh/test/members/1';

    // a signed peer: captures a real key announcement, then sends garbage and replays
    const hostile = await hostilePeer(cluster.managementKey, true);
    const captured: Uint8Array[] = [];
    hostile.services.pubsub.addEventListener('message', (evt) => {
      if (evt.detail.topic === keysTopic) captured.push(evt.detail.data);
    });
    hostile.services.pubsub.subscribe(keysTopic);
    hostile.services.pubsub.subscribe(membersTopic);
    const conn = await hostile.dial(seed);
    await waitFor(() => hostile.services.pubsub.getSubscribers(keysTopic).length > 0, {
      message: 'hostile peer sees subscribers',
    });
    // rotate on the node the hostile peer is connected to: a node floods its own announcements to every subscriber
    await cluster.admin(0, '/v1/keys/rotate', { method: 'POST', body: { use: 'enc' } });
    await waitFor(() => captured.length > 0, { message: 'captured an announcement' });
    await cluster.waitForAgreement('rotation spread');
    const before = await cluster.admin<ClusterView>(0, '/v1/cluster');

    const junk = [
      Buffer.from('not msgpack at all'),
      pack({ t: 'key', v: 1, from: '0123456789abcdef', kid: 'x'.repeat(43), sealed: Buffer.from('not sealed') }),
      pack({ t: 'key', v: 99, from: 'zz' }),
      pack({ t: 'heartbeat', v: 1, from: '0123456789abcdef', name: 7 }),
      Buffer.alloc(300 * 1024, 1),
    ];
    for (const data of junk) {
      await hostile.services.pubsub.publish(keysTopic, data).catch(() => undefined);
      await hostile.services.pubsub.publish(membersTopic, data).catch(() => undefined);
    }
    for (let i = 0; i < 5; i++) await hostile.services.pubsub.publish(keysTopic, captured[0]!).catch(() => undefined);

    // an unsigned peer
    const unsigned = await hostilePeer(cluster.managementKey, false);
    unsigned.services.pubsub.subscribe(keysTopic);
    await unsigned.dial(seed);
    await waitFor(() => unsigned.services.pubsub.getSubscribers(keysTopic).length > 0, {
      message: 'unsigned peer sees subscribers',
    });
    await unsigned.services.pubsub.publish(keysTopic, captured[0]!).catch(() => undefined);

    // malformed sync requests: three strikes and the peer is banned
    for (let i = 0; i < 3; i++) {
      try {
        const stream = await hostile.dialProtocol(conn.remotePeer, '/keymesh/test/sync/1');
        const lp = lpStream(stream);
        await lp.write(pack({ t: 'sync-request', v: 1, from: 'nonsense', have: 'everything' }));
        await lp.read({ signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
      } catch {
        // the node hung up: expected once banned
      }
    }
    await waitFor(() => cluster.nodes[0]!.process!.stdout().includes('peer banned for sending malformed messages'), {
      message: 'the sender is banned',
    });
    await waitFor(async () => hostile.getConnections(conn.remotePeer).length === 0, {
      message: 'the banned peer is disconnected',
    });
    // a banned peer's new connection is refused right after the handshake
    await hostile.dial(seed, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
    await waitFor(() => hostile.getConnections(conn.remotePeer).length === 0, {
      message: 'the banned peer cannot stay connected',
    });
    await expect(
      hostile.dialProtocol(seed, '/keymesh/test/sync/1', { signal: AbortSignal.timeout(3_000) }),
    ).rejects.toThrow();

    const out = cluster.nodes[0]!.process!.stdout();
    expect(out).toContain('malformed key message rejected');
    expect(out).toContain('malformed heartbeat rejected');
    await cluster.waitForAgreement('still agreeing');
    const after = await cluster.admin<ClusterView>(0, '/v1/cluster');
    expect(after.keySetDigest).toBe(before.keySetDigest);
    expect(after.members.map((m) => m.name).sort()).toEqual(['node-1', 'node-2', 'node-3']);
    for (const n of cluster.nodes) expect(n.process!.child.exitCode).toBeNull();
  });

  it('converges with five nodes', async () => {
    const cluster = await TestCluster.create(5, dirs);
    await cluster.startAll();
    await cluster.waitForAgreement('five nodes agree', 30_000);
    const rotated = await cluster.admin<{ kid: string }>(4, '/v1/keys/rotate', {
      method: 'POST',
      body: { use: 'enc' },
    });
    for (let i = 0; i < 5; i++)
      await waitFor(async () => (await cluster.kids(i)).includes(rotated.kid), {
        message: `node ${i + 1} has the new key`,
      });
  });

  it('keeps the key a lone node booted with published everywhere after it joins', async () => {
    const cluster = await TestCluster.create(3, dirs);
    await cluster.start(0);
    await cluster.start(1);
    await cluster.waitForAgreement('two nodes agree');
    const lone = await cluster.start(2, { seeds: [] });
    const loneSig = (await cluster.kids(2, '/.well-known/jwks.json'))[0]!;
    expect(lone.stdout()).toContain('"msg":"node ready"');
    await cluster.stop(2);
    await cluster.start(2);
    await cluster.waitForAgreement('the lone node joined');
    for (let i = 0; i < 3; i++) expect(await cluster.kids(i, '/.well-known/jwks.json')).toContain(loneSig);
  });
});
