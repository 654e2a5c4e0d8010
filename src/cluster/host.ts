/**
 * The libp2p host of one node: TCP, Noise, Yamux, identify, ping, a private network keyed from the management keys
 * (`@libp2p/pnet` under the newest key both ends hold, with a check that names a mismatched key, see
 * `network-guard.ts`), and gossipsub.
 *
 * Gossipsub is tuned for small clusters, often on one machine (DESIGN §7):
 * - mesh degrees: `D = 2`, `Dlo = 1`, `Dhi = 4`, `Dout = 0`. Members connect to each other directly (see
 *   `MAX_MEMBER_CONNECTIONS`) and `floodPublish` sends a node's own messages to every connected subscriber, so the
 *   mesh only relays to the few a publisher is not connected to. Every mesh peer forwards each message once, so
 *   a node receives about D copies of each: gossipsub's default of 6 doubled the gossip traffic and CPU of an idle
 *   10-node cluster and slowed propagation;
 * - IP colocation scoring is off (`IPColocationFactorWeight = 0`): every loopback node shares 127.0.0.1, which
 *   would otherwise push their scores below the graylist threshold;
 * - `floodPublish` stays on, so a node's own announcements reach every subscribed peer, not only its mesh;
 * - IHAVE gossip is cut to one peer a heartbeat listing one heartbeat's ids (`GOSSIP_PEERS`, `GOSSIP_WINDOWS`);
 * - messages are signed (`StrictSign`) and every topic has a validator; an invalid message lowers its sender's score;
 * - copies are recognised by origin and sequence number before their signature is checked (`fastMsgIdFn`). A
 *   node receives each message from several peers, and gossipsub otherwise verifies every copy's Ed25519
 *   signature before it looks for duplicates: a fifth of an idle 10-node cluster's CPU went to that. Only a copy
 *   that passed validation is remembered, so a forged first copy cannot shadow the real one.
 * Nothing is published to a topic without subscribers (the message would be lost); the sync protocol covers
 * anything gossip missed.
 */
import { gossipsub, type GossipSub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { PrivateKey } from '@libp2p/interface';
import { noise } from '@libp2p/noise';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { createLibp2p, type Libp2p } from 'libp2p';
import type { Logger } from '../log.js';
import type { ClusterNetwork } from './network-guard.js';
import { DEFAULT_TIMING } from '../timing.js';

/** Gossipsub heartbeat (mesh maintenance and IHAVE gossip) interval: half gossipsub's own 1 s, so a joining node is grafted into the mesh sooner. Default is 500 ms. */
export const GOSSIP_HEARTBEAT_INTERVAL_MS = DEFAULT_TIMING.gossipHeartbeatIntervalMs;

/** Gossipsub's target mesh degree. */
const MESH_DEGREE = 2;

/**
 * Peers sent IHAVE gossip (the ids of recent messages) at each gossipsub heartbeat, and how many heartbeats' worth
 * of ids each IHAVE lists. Gossipsub's defaults (6 peers, or a quarter of the non-mesh peers if more; 3 heartbeats)
 * made IHAVE the largest share of an idle 10-node cluster's traffic: every node sent one to each of its 5–7 non-mesh
 * peers twice a second, each listing about 30 ids that the peer already had from the publisher itself
 * (`floodPublish`). Every topic repairs itself without it (heartbeats repeat, keys are pulled on a digest mismatch,
 * revocations are read from the register), so one peer a heartbeat, listing the last heartbeat's ids, is kept only
 * as a backstop.
 */
const GOSSIP_PEERS = 1;
const GOSSIP_WINDOWS = 1;

/** A message's origin peer and sequence number, both covered by its signature: the key duplicates share. */
function originAndSeqno(msg: { from?: Uint8Array; seqno?: Uint8Array }): string {
  return `${Buffer.from(msg.from ?? []).toString('base64')}/${Buffer.from(msg.seqno ?? []).toString('base64')}`;
}

/** The services of a keymesh host. */
export type HostServices = {
  identify: unknown;
  ping: unknown;
  pubsub: GossipSub;
};

/** A keymesh libp2p host. */
export type Host = Libp2p<HostServices>;

/** Creates (does not start) the host. */
export async function createHost(options: {
  privateKey: PrivateKey;
  /** The private network: the management keys' network keys and the connections under each. */
  network: ClusterNetwork;
  listen: { host: string; port: number };
  /** Refuses connections to and from peers this returns true for (penalised peers, injected partitions). */
  isBanned: (peerId: string) => boolean;
  log: Logger;
}): Promise<Host> {
  const family = options.listen.host.includes(':') ? 'ip6' : 'ip4';
  return createLibp2p({
    start: false,
    privateKey: options.privateKey,
    addresses: { listen: [`/${family}/${options.listen.host}/tcp/${options.listen.port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: options.network.protector(),
    connectionGater: {
      denyDialMultiaddr: () => false,
      denyDialPeer: (peerId) => options.isBanned(peerId.toString()),
      denyInboundEncryptedConnection: (peerId) => options.isBanned(peerId.toString()),
      denyOutboundEncryptedConnection: (peerId) => options.isBanned(peerId.toString()),
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        D: MESH_DEGREE,
        Dlo: MESH_DEGREE - 1,
        Dhi: 2 * MESH_DEGREE,
        Dout: 0,
        Dscore: MESH_DEGREE - 1,
        heartbeatInterval: GOSSIP_HEARTBEAT_INTERVAL_MS,
        floodPublish: true,
        Dlazy: GOSSIP_PEERS,
        gossipFactor: 0,
        mcacheGossip: GOSSIP_WINDOWS,
        fastMsgIdFn: originAndSeqno,
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        globalSignaturePolicy: 'StrictSign',
        scoreParams: { IPColocationFactorWeight: 0 },
      }),
    },
  });
}
