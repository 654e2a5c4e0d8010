/**
 * The coordination protocol trusts no sender's word: a request is answered only when the peer it came from is the
 * node it names, and that node may ask it. A peer holding the network key that was never a member cannot make a
 * node drop its register state (`restored`), push it a map, or join as someone else.
 */
import { generateKeyPair } from '@libp2p/crypto/keys';
import { afterEach, describe, expect, it } from 'vitest';
import { createHost, type Host } from '../../src/cluster/host.js';
import { ManagementKey } from '../../src/crypto/management-key.js';
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
  const host = await createHost({ privateKey: await generateKeyPair('Ed25519'), managementKey: mk, clusterId: 'co', listen: { host: '127.0.0.1', port: 0 }, isBanned: () => false, log: silentLogger() });
  await host.start();
  hosts.push(host);
  return host;
}

describe('coordination requests', () => {
  it('are answered only for the node their peer is bound to, and only what that node may ask', async () => {
    const mk = ManagementKey.parse(ManagementKey.generate(), 'test');
    const [server, member, stranger, unknown] = [await node(mk), await node(mk), await node(mk), await node(mk)];
    const bound = new Map([[member.peerId.toString(), MEMBER], [stranger.peerId.toString(), STRANGER]]);
    const handled: Array<{ t: string; from: string }> = [];
    const bad: string[] = [];
    const coord = new Coord({
      host: server, protocol: '/keymesh/co/coord/1', nodeId: SERVER, peerOf: () => undefined, log: silentLogger(),
      handler: async (request, from) => (handled.push({ t: request.t, from }), { t: 'ok' }),
      onBadMessage: (peer) => bad.push(peer),
      identify: (peer) => bound.get(peer),
      mayAsk: (from, request) => request.t === 'get-map' || request.t === 'join' || from === MEMBER,
    });
    await coord.register();
    const client = (host: Host, as: string) => new Coord({
      host, protocol: '/keymesh/co/coord/1', nodeId: as, peerOf: (id) => (id === SERVER ? server.peerId.toString() : undefined),
      handler: async () => ({ t: 'ok' }), onBadMessage: () => undefined, log: silentLogger(),
    });
    for (const h of [member, stranger, unknown]) await h.dial(server.getMultiaddrs()[0]!);
    const ask = (host: Host, as: string, request: CoordRequest) => client(host, as).request(SERVER, request, 2_000);

    // a peer never heard of, and a stranger that is no member, cannot make the server drop its state
    await expect(ask(unknown, MEMBER, { t: 'restored', generation: 99 })).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    await expect(ask(stranger, STRANGER, { t: 'restored', generation: 99 })).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE', message: expect.stringContaining('not a member') });
    await expect(ask(stranger, STRANGER, { t: 'push-map', map: new Uint8Array(8) })).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE', message: expect.stringContaining('not a member') });
    expect(handled).toEqual([]);
    // it may ask for the map and to join, as itself
    expect(await ask(stranger, STRANGER, { t: 'join', nodeId: STRANGER, name: 'x' })).toEqual({ t: 'ok' });
    expect(handled).toEqual([{ t: 'join', from: STRANGER }]);
    // claiming to be the member, or asking to join as another node, is an impostor's request: refused with a strike
    await expect(ask(stranger, MEMBER, { t: 'restored', generation: 99 })).rejects.toThrow();
    await waitFor(() => bad.length === 1, { message: 'the impostor was reported' });
    await expect(client(stranger, STRANGER).request(SERVER, { t: 'join', nodeId: MEMBER, name: 'x' }, 2_000)).rejects.toThrow();
    await waitFor(() => bad.length === 2, { message: 'the join for another node was reported' });
    expect(handled).toHaveLength(1);
    // the member itself is answered
    expect(await ask(member, MEMBER, { t: 'restored', generation: 1 })).toEqual({ t: 'ok' });
    expect(handled.at(-1)).toEqual({ t: 'restored', from: MEMBER });
  });
});
