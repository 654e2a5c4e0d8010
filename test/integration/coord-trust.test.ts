/**
 * The coordination protocol trusts no sender's word: a request is answered only when the peer it came from is the
 * node it names, and that node may ask it. A peer holding the network key that was never a member cannot make a
 * node drop its register state (`restored`), push it a map, or join as someone else; a member that turned hostile
 * cannot either, short of the target's own signature of a generation its data directory never reached. Key sync
 * serves only peers bound to the node they name.
 */
import { join } from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import { afterEach, describe, expect, it } from 'vitest';
import { generationClaim } from '../../src/cluster/generation-proof.js';
import { ClusterNetwork } from '../../src/cluster/network-guard.js';
import { createHost, type Host } from '../../src/cluster/host.js';
import { loadPeerIdentity } from '../../src/cluster/identity.js';
import { KeySync } from '../../src/cluster/key-sync.js';
import type { Penalties } from '../../src/cluster/penalties.js';
import { loadManagementKey, ManagementKey } from '../../src/crypto/management-key.js';
import { Sealer } from '../../src/crypto/sealer.js';
import { DB_DIR } from '../../src/node/data-dir.js';
import { LevelStore } from '../../src/storage/level-store.js';
import { SealedStore } from '../../src/storage/sealed-store.js';
import { TestCluster } from '../helpers/cluster.js';
import { makeKeyring } from '../helpers/keyring.js';
import { stopAll } from '../helpers/node-process.js';
import { TempDirs } from '../helpers/temp-dir.js';
import { silentLogger } from '../../src/log.js';
import { Coord, type CoordRequest } from '../../src/replication/coord.js';
import { waitFor } from '../helpers/wait-for.js';

const hosts: Host[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => Promise.resolve(h.stop()).catch(() => undefined)));
});

const MEMBER = 'bbbbbbbbbbbbbbb1';
const SERVER = 'bbbbbbbbbbbbbbb0';
const STRANGER = 'ccccccccccccccc9';

async function node(mk: ManagementKey) {
  const host = await createHost({
    privateKey: await generateKeyPair('Ed25519'),
    network: new ClusterNetwork({ keys: [mk], clusterId: 'co', log: silentLogger() }),
    listen: { host: '127.0.0.1', port: 0 },
    isBanned: () => false,
    log: silentLogger(),
  });
  await host.start();
  hosts.push(host);
  return host;
}

describe('coordination requests', () => {
  it('are answered only for the node their peer is bound to, and only what that node may ask', async () => {
    const mk = ManagementKey.parse(ManagementKey.generate(), 'test');
    const [server, member, stranger, unknown] = [await node(mk), await node(mk), await node(mk), await node(mk)];
    const bound = new Map([
      [member.peerId.toString(), MEMBER],
      [stranger.peerId.toString(), STRANGER],
    ]);
    const handled: Array<{ t: string; from: string }> = [];
    const bad: string[] = [];
    const coord = new Coord({
      host: server,
      protocol: '/keymesh/co/coord/1',
      nodeId: SERVER,
      peerOf: () => undefined,
      log: silentLogger(),
      handler: async (request, from) => (handled.push({ t: request.t, from }), { t: 'ok' }),
      onBadMessage: (peer) => bad.push(peer),
      identify: (peer) => bound.get(peer),
      mayAsk: (from, request) => request.t === 'get-map' || request.t === 'join' || from === MEMBER,
    });
    await coord.register();
    const client = (host: Host, as: string) =>
      new Coord({
        host,
        protocol: '/keymesh/co/coord/1',
        nodeId: as,
        peerOf: (id) => (id === SERVER ? server.peerId.toString() : undefined),
        handler: async () => ({ t: 'ok' }),
        onBadMessage: () => undefined,
        log: silentLogger(),
      });
    for (const h of [member, stranger, unknown]) await h.dial(server.getMultiaddrs()[0]!);
    const ask = (host: Host, as: string, request: CoordRequest) => client(host, as).request(SERVER, request, 2_000);

    // a peer never heard of, and a stranger that is no member, cannot make the server drop its state
    await expect(
      ask(unknown, MEMBER, { t: 'restored', proof: { g: 99, sig: new Uint8Array(64) } }),
    ).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    await expect(
      ask(stranger, STRANGER, { t: 'restored', proof: { g: 99, sig: new Uint8Array(64) } }),
    ).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE', message: expect.stringContaining('not a member') });
    await expect(ask(stranger, STRANGER, { t: 'push-map', map: new Uint8Array(8) })).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
      message: expect.stringContaining('not a member'),
    });
    expect(handled).toEqual([]);
    // it may ask for the map and to join, as itself
    expect(await ask(stranger, STRANGER, { t: 'join', nodeId: STRANGER, name: 'x' })).toEqual({ t: 'ok' });
    expect(handled).toEqual([{ t: 'join', from: STRANGER }]);
    // claiming to be the member, or asking to join as another node, is an impostor's request: refused with a strike
    await expect(ask(stranger, MEMBER, { t: 'restored', proof: { g: 99, sig: new Uint8Array(64) } })).rejects.toThrow();
    await waitFor(() => bad.length === 1, { message: 'the impostor was reported' });
    await expect(
      client(stranger, STRANGER).request(SERVER, { t: 'join', nodeId: MEMBER, name: 'x' }, 2_000),
    ).rejects.toThrow();
    await waitFor(() => bad.length === 2, { message: 'the join for another node was reported' });
    expect(handled).toHaveLength(1);
    // the member itself is answered
    expect(await ask(member, MEMBER, { t: 'restored', proof: { g: 1, sig: new Uint8Array(64) } })).toEqual({ t: 'ok' });
    expect(handled.at(-1)).toEqual({ t: 'restored', from: MEMBER });
  });
});

describe('a member turned hostile', () => {
  const dirs = new TempDirs();
  afterEach(async () => {
    await stopAll();
    dirs.cleanup();
  });

  it("cannot make another node drop its register state without that node's own signature of a later generation", async () => {
    const cluster = await TestCluster.create(3, dirs);
    await cluster.startAll();
    const view = await cluster.waitForMap('genesis of three');
    expect((await cluster.getOrCreate(1, 'kept', 'value')).status).toBe(200);
    const ids = cluster.nodes.map((n) => view.map!.members.find((m) => m.name === n.name)!.nodeId);
    const target = (await cluster.request(1, '/v1/cluster')).body as unknown as { peerId: string };
    const roguePeer = ((await cluster.request(0, '/v1/cluster')).body as unknown as { peerId: string }).peerId;
    // node 0 goes rogue: its process stops and its own libp2p key, read from its data directory, speaks for it
    await cluster.stop(0);
    const mk = loadManagementKey({ env: cluster.managementKey });
    const level = new LevelStore(join(cluster.nodes[0]!.dataDir, 'data', DB_DIR));
    await level.start();
    const privateKey = await loadPeerIdentity(new SealedStore(level, new Sealer(mk, ids[0]!)));
    await level.stop();
    const rogue = await createHost({
      privateKey,
      network: new ClusterNetwork({ keys: [mk], clusterId: 'test', log: silentLogger() }),
      listen: { host: '127.0.0.1', port: 0 },
      isBanned: () => false,
      log: silentLogger(),
    });
    expect(rogue.peerId.toString()).toBe(roguePeer);
    await rogue.start();
    hosts.push(rogue);
    await rogue.dial(multiaddr(`/ip4/127.0.0.1/tcp/${cluster.nodes[1]!.ports.p2p}/p2p/${target.peerId}`));
    const coord = new Coord({
      host: rogue,
      protocol: '/keymesh/test/coord/1',
      nodeId: ids[0]!,
      peerOf: (id) => (id === ids[1] ? target.peerId : undefined),
      handler: async () => ({ t: 'ok' }),
      onBadMessage: () => undefined,
      log: silentLogger(),
    });
    const claim = (g: number) => generationClaim('test', ids[1]!, g);
    const proofs = [
      { g: 1_000_000, sig: new Uint8Array(64) },
      // the rogue's own signature over the target's claim: a real signature, by the wrong key
      { g: 1_000_000, sig: await privateKey.sign(claim(1_000_000)) },
    ];
    for (const proof of proofs) {
      await expect(coord.request(ids[1]!, { t: 'restored', proof }, 5_000)).rejects.toMatchObject({
        code: 'ERR_INVALID_REQUEST',
      });
    }
    expect((await cluster.mapOf(1)).status).toBe('member');
    expect((await cluster.read(1, 'kept')).value).toBe('value');
    expect((await cluster.getOrCreate(1, 'still-voting', 'yes')).status).toBe(200);
  }, 90_000);
});

describe('key sync', () => {
  it('serves only peers bound to the node they name, and strikes an impostor', async () => {
    const mk = ManagementKey.parse(ManagementKey.generate(), 'test');
    const sealer = new Sealer(mk, 'node-test');
    const [server, member, stranger, impostor] = [await node(mk), await node(mk), await node(mk), await node(mk)];
    const held = await makeKeyring();
    await held.rotation.check();
    const bound = new Map([
      [member.peerId.toString(), MEMBER],
      [impostor.peerId.toString(), STRANGER],
    ]);
    const strikes: string[] = [];
    const penalties = { strike: (peer: string) => (strikes.push(peer), false) } as unknown as Penalties;
    const serving = new KeySync({
      host: server,
      keyring: held.keyring,
      sealer,
      penalties,
      nodeId: SERVER,
      protocol: '/keymesh/co/sync/1',
      log: silentLogger(),
      identify: (peer) => bound.get(peer),
    });
    await serving.register();
    const puller = async (host: Host, as: string) => {
      const empty = await makeKeyring();
      return {
        sync: new KeySync({
          host,
          keyring: empty.keyring,
          sealer,
          penalties: { strike: () => false } as unknown as Penalties,
          nodeId: as,
          protocol: '/keymesh/co/sync/1',
          log: silentLogger(),
        }),
        keyring: empty.keyring,
      };
    };
    for (const h of [member, stranger, impostor]) await h.dial(server.getMultiaddrs()[0]!);

    const fromMember = await puller(member, MEMBER);
    expect(await fromMember.sync.pull(server.peerId)).toBe(held.keyring.list().length);
    // a peer that never showed who it is gets nothing, and is not punished for asking
    const fromStranger = await puller(stranger, 'ccccccccccccccc8');
    await expect(fromStranger.sync.pull(server.peerId)).rejects.toThrow();
    expect(fromStranger.keyring.list()).toHaveLength(0);
    expect(strikes).toEqual([]);
    // a peer bound to one node that names another is an impostor
    const fromImpostor = await puller(impostor, MEMBER);
    await expect(fromImpostor.sync.pull(server.peerId)).rejects.toThrow();
    expect(fromImpostor.keyring.list()).toHaveLength(0);
    await waitFor(() => strikes.length === 1, { message: 'the impostor was struck' });
    expect(strikes).toEqual([impostor.peerId.toString()]);
    // a member whose stream breaks off before its request (a reset, a cut) is not struck: the network did it
    for (let i = 0; i < 3; i++) {
      const stream = await member.dialProtocol(server.peerId, '/keymesh/co/sync/1');
      stream.abort(new Error('cut'));
    }
    expect(await fromMember.sync.pull(server.peerId)).toBe(0);
    expect(strikes).toEqual([impostor.peerId.toString()]);
  });
});
