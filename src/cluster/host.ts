/**
 * The libp2p host of one node: TCP, Noise, Yamux, identify, ping, a private network keyed from the management key
 * (`@libp2p/pnet` with a check that names a mismatched key, see `network-guard.ts`), and gossipsub.
 *
 * Gossipsub is tuned for small clusters, often on one machine (DESIGN §7):
 * - mesh degrees fit the cluster: `D = min(6, max(1, expected − 1))`, `Dlo = max(1, D − 2)`, `Dhi = D + 2`,
 *   `Dout = 0`, so a 3-node cluster keeps both peers in its mesh instead of waiting for 6;
 * - IP colocation scoring is off (`IPColocationFactorWeight = 0`): every loopback node shares 127.0.0.1, which
 *   would otherwise push their scores below the graylist threshold;
 * - `floodPublish` stays on, so a node's own announcements reach every subscribed peer, not only its mesh;
 * - messages are signed (`StrictSign`) and every topic has a validator; an invalid message lowers its sender's score.
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
import type { ManagementKey } from '../crypto/management-key.js';
import type { Logger } from '../log.js';
import { clusterProtector } from './network-guard.js';

/** Gossipsub heartbeat (mesh maintenance) interval. Default is 500 ms (libp2p's is 1 s). */
export const GOSSIP_HEARTBEAT_INTERVAL_MS = 500;

/** The services of a keymesh host. */
export type HostServices = {
  identify: unknown;
  ping: unknown;
  pubsub: GossipSub;
};

/** A keymesh libp2p host. */
export type Host = Libp2p<HostServices>;

/** The private-network key of a cluster: HKDF of the management key, in the swarm-key format pnet expects. */
export function networkKey(managementKey: ManagementKey, clusterId: string): Uint8Array {
  const hex = managementKey.derive(`pnet|cluster=${clusterId}`).toString('hex');
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}`);
}

/** Creates (does not start) the host. */
export async function createHost(options: {
  privateKey: PrivateKey;
  managementKey: ManagementKey;
  clusterId: string;
  listen: { host: string; port: number };
  /** The cluster size the mesh is tuned for (seeds + 1, at least 3). */
  expectedSize: number;
  /** Refuses connections from peers this returns true for (penalised peers). */
  isBanned: (peerId: string) => boolean;
  log: Logger;
}): Promise<Host> {
  const d = Math.min(6, Math.max(1, options.expectedSize - 1));
  const family = options.listen.host.includes(':') ? 'ip6' : 'ip4';
  return createLibp2p({
    start: false,
    privateKey: options.privateKey,
    addresses: { listen: [`/${family}/${options.listen.host}/tcp/${options.listen.port}`] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: clusterProtector({ psk: networkKey(options.managementKey, options.clusterId), log: options.log }),
    connectionGater: {
      denyDialMultiaddr: () => false,
      denyInboundEncryptedConnection: (peerId) => options.isBanned(peerId.toString()),
      denyOutboundEncryptedConnection: (peerId) => options.isBanned(peerId.toString()),
    },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        D: d,
        Dlo: Math.max(1, d - 2),
        Dhi: d + 2,
        Dout: 0,
        Dscore: Math.min(d, 4),
        heartbeatInterval: GOSSIP_HEARTBEAT_INTERVAL_MS,
        floodPublish: true,
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        globalSignaturePolicy: 'StrictSign',
        scoreParams: { IPColocationFactorWeight: 0 },
      }),
    },
  });
}
