/** Gossip traffic from `ss` output (tools/bench/cluster-traffic.ts): parsing, and the bytes per node between two samples. */
import { describe, expect, it } from 'vitest';
import { parseSs, type SocketCounters, trafficBetween } from '../../../tools/bench/cluster-traffic.js';

const SS = [
  '0      0      127.0.0.1:9721     127.0.0.1:40100    users:(("node",pid=101,fd=21))',
  '\t cubic wscale:7,7 rto:204 bytes_sent:1000 bytes_acked:1001 bytes_received:2000 segs_out:10',
  '0      0      [::1]:40200        [::1]:9722         users:(("node",pid=102,fd=22))',
  '\t cubic bytes_received:70',
  '0      0      127.0.0.1:5432     127.0.0.1:40300',
  '\t cubic bytes_sent:5 bytes_received:6',
  '',
].join('\n');

describe('parseSs', () => {
  it('reads each socket line with the TCP info line under it', () => {
    expect(parseSs(SS)).toEqual([
      {
        pid: 101,
        local: '127.0.0.1:9721',
        peer: '127.0.0.1:40100',
        localPort: 9721,
        peerPort: 40100,
        bytesSent: 1000,
        bytesReceived: 2000,
      },
      {
        pid: 102,
        local: '[::1]:40200',
        peer: '[::1]:9722',
        localPort: 40200,
        peerPort: 9722,
        bytesSent: 0,
        bytesReceived: 70,
      },
    ]);
  });

  it('skips sockets without an owning process and reads nothing from empty output', () => {
    expect(parseSs(SS).map((s) => s.localPort)).not.toContain(5432);
    expect(parseSs('')).toEqual([]);
  });

  it('counts zero bytes for a socket without an info line', () => {
    const [socket] = parseSs('0 0 127.0.0.1:1 127.0.0.1:2 users:(("node",pid=7,fd=3))\n');
    expect(socket).toMatchObject({ pid: 7, bytesSent: 0, bytesReceived: 0 });
  });
});

function socket(pid: number, localPort: number, peerPort: number, sent: number, received: number): SocketCounters {
  return {
    pid,
    local: `127.0.0.1:${localPort}`,
    peer: `127.0.0.1:${peerPort}`,
    localPort,
    peerPort,
    bytesSent: sent,
    bytesReceived: received,
  };
}

describe('trafficBetween', () => {
  const nodes = [
    { name: 'node-1', pid: 101 },
    { name: 'node-2', pid: 102 },
  ];
  const p2p = new Set([9721, 9722]);

  it('adds the growth of kept sockets and all bytes of new ones, per node', () => {
    const before = [socket(101, 9721, 40100, 1000, 2000), socket(102, 40100, 9721, 2000, 1000)];
    const after = [
      socket(101, 9721, 40100, 1500, 2600),
      socket(102, 40100, 9721, 2600, 1500),
      socket(102, 40101, 9721, 300, 100),
    ];
    expect(trafficBetween(before, after, nodes, p2p)).toEqual({
      perNode: [
        { name: 'node-1', sentBytes: 500, receivedBytes: 600, connections: 1 },
        { name: 'node-2', sentBytes: 900, receivedBytes: 600, connections: 2 },
      ],
      socketsOpened: 1,
      socketsClosed: 0,
    });
  });

  it('counts a socket that closed in the window, whose bytes are lost', () => {
    const before = [socket(101, 9721, 40100, 10, 10), socket(102, 40100, 9721, 10, 10)];
    const after = [socket(101, 9721, 40100, 15, 15)];
    const delta = trafficBetween(before, after, nodes, p2p);
    expect(delta.socketsClosed).toBe(1);
    expect(delta.perNode[1]).toEqual({ name: 'node-2', sentBytes: 0, receivedBytes: 0, connections: 0 });
  });

  it('leaves out HTTP sockets of the nodes and p2p sockets of other processes', () => {
    const after = [socket(101, 8721, 40500, 999, 999), socket(555, 40600, 9721, 999, 999)];
    expect(trafficBetween([], after, nodes, p2p)).toEqual({
      perNode: [
        { name: 'node-1', sentBytes: 0, receivedBytes: 0, connections: 0 },
        { name: 'node-2', sentBytes: 0, receivedBytes: 0, connections: 0 },
      ],
      socketsOpened: 0,
      socketsClosed: 0,
    });
  });
});
