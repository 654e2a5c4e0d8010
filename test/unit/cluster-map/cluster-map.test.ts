import { describe, expect, it } from 'vitest';
import {
  decodeMap,
  encodeMap,
  isStable,
  Placement,
  settled,
  withJoining,
  withLeaving,
  type ClusterMap,
} from '../../../src/cluster-map/cluster-map.js';
import { genesisCandidates, transitionStep } from '../../../src/replication/map-steps.js';
import { majorities, Proposer, unanimous, type RegisterTransport } from '../../../src/register/proposer.js';
import { Acceptor, type AcceptorState } from '../../../src/register/acceptor.js';
import type { RegisterReply, RegisterRequest } from '../../../src/register/messages.js';

const id = (n: number) => n.toString(16).padStart(16, '0');
const genesis: ClusterMap = {
  epoch: 1,
  id: 'abc',
  members: [1, 2, 3].map((n) => ({ nodeId: id(n), name: `node-${n}`, role: 'normal' as const })),
};

describe('cluster map', () => {
  it('goes stable → joining → stable, one change at a time', () => {
    const joining = withJoining(genesis, id(4), 'node-4');
    expect(joining.epoch).toBe(2);
    expect(isStable(joining)).toBe(false);
    expect(() => withJoining(joining, id(5), 'node-5')).toThrow(/changing/);
    expect(() => withLeaving(joining, id(1))).toThrow(/changing/);
    const after = settled(joining);
    expect(after).toMatchObject({ epoch: 3, id: 'abc' });
    expect(after.members.every((m) => m.role === 'normal')).toBe(true);
    expect(after.members).toHaveLength(4);
  });

  it('removes a leaving member when it settles, and refuses unknown members and the last one', () => {
    const leaving = withLeaving(genesis, id(2));
    expect(leaving.members.find((m) => m.nodeId === id(2))!.role).toBe('leaving');
    expect(settled(leaving).members.map((m) => m.nodeId)).toEqual([id(1), id(3)]);
    expect(() => withLeaving(genesis, id(9))).toThrow(/not a member/);
    expect(() => withJoining(genesis, id(1), 'again')).toThrow(/already a member/);
    const single: ClusterMap = { epoch: 1, id: 'x', members: [genesis.members[0]!] };
    expect(() => withLeaving(single, id(1))).toThrow(/last member/);
  });

  it('round-trips through msgpack and rejects malformed bytes with ERR_BAD_MESSAGE', () => {
    expect(decodeMap(encodeMap(genesis))).toEqual(genesis);
    expect(() => decodeMap(new Uint8Array([0xc1]))).toThrow(expect.objectContaining({ code: 'ERR_BAD_MESSAGE' }));
    expect(() => decodeMap(encodeMap({ ...genesis, epoch: 0 }))).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_MESSAGE' }),
    );
    expect(() => decodeMap(encodeMap({ ...genesis, members: [] }))).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_MESSAGE' }),
    );
  });

  it('places a moving key on the old and the new replica set during a transition, and on one set when stable', () => {
    const stable = new Placement(genesis, 3);
    expect(stable.replicaSets('k')).toHaveLength(1);
    const grown = settled(
      withJoining(
        { ...genesis, members: [...genesis.members, { nodeId: id(4), name: 'node-4', role: 'normal' }] },
        id(5),
        'node-5',
      ),
    );
    const joining = new Placement(withJoining(grown, id(6), 'node-6'), 3);
    let moving = 0;
    for (let i = 0; i < 500; i++) {
      const sets = joining.replicaSets(`user/${i}`);
      if (sets.length === 2) {
        moving += 1;
        expect(sets[0]).not.toContain(id(6));
        expect(sets[1]).toContain(id(6));
      } else {
        expect(sets[0]).not.toContain(id(6));
      }
    }
    expect(moving).toBeGreaterThan(0);
    expect(moving).toBeLessThan(500);
    const leaving = new Placement(withLeaving(grown, id(1)), 3);
    for (let i = 0; i < 200; i++) {
      const sets = leaving.replicaSets(`user/${i}`);
      expect(sets[sets.length - 1]).not.toContain(id(1));
    }
  });
});

/** Acceptors in memory, with nodes that can be taken down. */
function network(nodes: string[]) {
  const stores = new Map(nodes.map((n) => [n, new Map<string, AcceptorState>()]));
  const acceptors = new Map(
    nodes.map((n) => [
      n,
      new Acceptor({
        load: async (k) => stores.get(n)!.get(k),
        save: async (k, s) => void stores.get(n)!.set(k, s),
      }),
    ]),
  );
  const down = new Set<string>();
  const transport: RegisterTransport = {
    request: async (to: string, request: RegisterRequest): Promise<RegisterReply> => {
      if (down.has(to)) throw new Error('down');
      return acceptors.get(to)!.handle(request);
    },
  };
  const timers = { now: () => Date.now(), sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)) };
  return {
    transport,
    down,
    proposer: (nodeId: string) =>
      new Proposer({ nodeId, transport, timers, settings: { deadlineMs: 200, requestTimeoutMs: 50 } }),
    stores,
  };
}

describe('quorums', () => {
  const v = (s: string) => new Uint8Array(Buffer.from(s));

  it('needs a majority of both sets under a joint quorum', async () => {
    const net = network(['a', 'b', 'c', 'd']);
    const joint = majorities(['a', 'b', 'c'], ['b', 'c', 'd']);
    net.down.add('c');
    net.down.add('d');
    await expect(net.proposer('a').getOrCreate('k', joint, v('x'))).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    net.down.delete('d');
    expect(Buffer.from(await net.proposer('a').getOrCreate('k', joint, v('y'))).toString()).toBe('y');
    // the value is on a majority of the new set, so the new set alone finds it
    net.down.clear();
    net.down.add('a');
    expect(Buffer.from((await net.proposer('d').read('k', ['b', 'c', 'd']))!).toString()).toBe('y');
  });

  it('needs every member under a unanimous quorum (genesis)', async () => {
    const net = network(['a', 'b', 'c']);
    net.down.add('c');
    await expect(net.proposer('a').getOrCreate('map/1', unanimous(['a', 'b', 'c']), v('m'))).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
    });
    net.down.clear();
    expect(
      Buffer.from(await net.proposer('b').getOrCreate('map/1', unanimous(['a', 'b', 'c']), v('n'))).toString(),
    ).toBe('n');
    // an overlapping candidate set re-proposes what the shared acceptor accepted
    const net2 = network(['a', 'b', 'c', 'd']);
    await net2.proposer('a').getOrCreate('map/1', unanimous(['a', 'b', 'c']), v('first'));
    expect(
      Buffer.from(await net2.proposer('d').getOrCreate('map/1', unanimous(['b', 'c', 'd']), v('second'))).toString(),
    ).toBe('first');
  });
});

describe('map steps', () => {
  const c = (n: number) => ({ nodeId: id(n), name: `node-${n}` });

  it('forms genesis only with bootstrapExpect nodes met, from the lowest ids, and only if this node is one', () => {
    expect(genesisCandidates(c(1), [c(2)], 3)).toBeUndefined();
    expect(genesisCandidates(c(2), [c(3), c(1)], 3)!.map((x) => x.nodeId)).toEqual([id(1), id(2), id(3)]);
    expect(genesisCandidates(c(4), [c(3), c(1), c(2)], 3)).toBeUndefined();
    expect(genesisCandidates(c(7), [], 1)!.map((x) => x.nodeId)).toEqual([id(7)]);
  });

  it('lets the joining node drive a join, and the lowest live normal member a removal', () => {
    const join = withJoining(genesis, id(4), 'node-4');
    const all = new Set([id(1), id(2), id(3), id(4)]);
    expect(transitionStep(join, id(4), all, 3, false)).toEqual({ kind: 'hand-over', ask: [id(1), id(2), id(3)] });
    expect(transitionStep(join, id(1), all, 3, false)).toEqual({ kind: 'not-driver' });
    expect(transitionStep(join, id(1), all, 3, true).kind).toBe('hand-over');
    const removal = withLeaving(genesis, id(1));
    const withoutOne = new Set([id(2), id(3)]);
    expect(transitionStep(removal, id(2), withoutOne, 3, false)).toEqual({ kind: 'hand-over', ask: [id(2), id(3)] });
    expect(transitionStep(removal, id(3), withoutOne, 3, false)).toEqual({ kind: 'not-driver' });
  });

  it('waits while more owners are down than a replica set can lose', () => {
    const removal = withLeaving(genesis, id(1));
    expect(transitionStep(removal, id(2), new Set([id(2)]), 3, false)).toEqual({ kind: 'wait', dead: [id(1), id(3)] });
    expect(transitionStep(removal, id(2), new Set([id(2), id(3)]), 1, false)).toEqual({ kind: 'wait', dead: [id(1)] });
  });
});
