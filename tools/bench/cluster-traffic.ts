/**
 * Gossip traffic of idle nodes, from the kernel's TCP counters: `ss -tinpH state established` lists every
 * established TCP socket with its owning process (`users:(("node",pid=…))`) and `bytes_sent`/`bytes_received`.
 *
 * A libp2p connection has the listening node's p2p port at one end and an ephemeral port at the dialling node's
 * end, so a socket is counted as gossip when its process is one of the nodes and either of its ports is a node's
 * p2p port (HTTP sockets are on the HTTP ports and are left out). Counting by owning process rather than by
 * "local port = p2p port" also counts the connections a node dialled. The bytes are TCP payload: Noise-encrypted
 * yamux frames carrying gossipsub (heartbeats, IHAVE/IWANT, mesh control), identify and ping. Headers are not
 * included.
 *
 * A socket that exists in both samples contributes its difference; one that opened during the window contributes
 * all its bytes; one that closed during the window is lost (the count of such sockets is reported).
 */
import { spawnSync } from 'node:child_process';

/** Largest `ss` output accepted (the machine may have many sockets). */
const SS_MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
const SS_ARGS = ['-tinpH', 'state', 'established'];

/** One established TCP socket as `ss` showed it. */
export interface SocketCounters {
  readonly pid: number;
  readonly local: string;
  readonly peer: string;
  readonly localPort: number;
  readonly peerPort: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

/** Why the traffic cannot be measured here, or undefined when `ss` can be run. */
export function trafficUnavailable(): string | undefined {
  const probe = spawnSync('ss', ['-V'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return '`ss` (iproute2) was not found';
  return undefined;
}

/** Every established TCP socket with an owning process id and byte counters. */
export function sampleSockets(): SocketCounters[] {
  const out = spawnSync('ss', SS_ARGS, { encoding: 'utf8', maxBuffer: SS_MAX_OUTPUT_BYTES });
  if (out.error || out.status !== 0)
    throw new Error(`ss ${SS_ARGS.join(' ')} failed: ${out.error?.message ?? out.stderr}`);
  return parseSs(out.stdout);
}

const portOf = (address: string) => Number(/:(\d+)$/.exec(address)?.[1] ?? NaN);

/** Parses `ss -tinpH`: a socket line, then one indented line with its TCP info. */
export function parseSs(text: string): SocketCounters[] {
  const sockets: SocketCounters[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '' || /^\s/.test(line)) continue;
    const info = lines[i + 1] !== undefined && /^\s/.test(lines[i + 1]!) ? lines[i + 1]! : '';
    const addresses = line.split(/\s+/).filter((token) => /^\S+:\d+$/.test(token));
    const pid = /pid=(\d+)/.exec(line)?.[1];
    const sent = /bytes_sent:(\d+)/.exec(info)?.[1];
    const received = /bytes_received:(\d+)/.exec(info)?.[1];
    if (addresses.length < 2 || pid === undefined) continue;
    const [local, peer] = addresses as [string, string];
    sockets.push({
      pid: Number(pid),
      local,
      peer,
      localPort: portOf(local),
      peerPort: portOf(peer),
      bytesSent: Number(sent ?? 0),
      bytesReceived: Number(received ?? 0),
    });
  }
  return sockets;
}

/** One node's gossip traffic over a window. */
export interface NodeTraffic {
  readonly name: string;
  readonly sentBytes: number;
  readonly receivedBytes: number;
  /** Gossip sockets of the node in the second sample. */
  readonly connections: number;
}

/** The traffic of every node between two samples. */
export interface TrafficDelta {
  readonly perNode: NodeTraffic[];
  readonly socketsOpened: number;
  readonly socketsClosed: number;
}

/** Bytes each node (`pid` → name) sent and received on gossip sockets between `before` and `after`. */
export function trafficBetween(
  before: readonly SocketCounters[],
  after: readonly SocketCounters[],
  nodes: ReadonlyArray<{ name: string; pid: number }>,
  p2pPorts: ReadonlySet<number>,
): TrafficDelta {
  const pids = new Set(nodes.map((n) => n.pid));
  const isGossip = (s: SocketCounters) => pids.has(s.pid) && (p2pPorts.has(s.localPort) || p2pPorts.has(s.peerPort));
  const key = (s: SocketCounters) => `${s.pid} ${s.local} ${s.peer}`;
  const earlier = new Map(before.filter(isGossip).map((s) => [key(s), s]));
  const later = after.filter(isGossip);
  const laterKeys = new Set(later.map(key));

  const totals = new Map(nodes.map((n) => [n.pid, { sent: 0, received: 0, connections: 0 }]));
  let socketsOpened = 0;
  for (const s of later) {
    const prior = earlier.get(key(s));
    if (!prior) socketsOpened++;
    const t = totals.get(s.pid)!;
    t.sent += s.bytesSent - (prior?.bytesSent ?? 0);
    t.received += s.bytesReceived - (prior?.bytesReceived ?? 0);
    t.connections++;
  }
  const socketsClosed = [...earlier.keys()].filter((k) => !laterKeys.has(k)).length;
  return {
    perNode: nodes.map((n) => {
      const t = totals.get(n.pid)!;
      return { name: n.name, sentBytes: t.sent, receivedBytes: t.received, connections: t.connections };
    }),
    socketsOpened,
    socketsClosed,
  };
}
