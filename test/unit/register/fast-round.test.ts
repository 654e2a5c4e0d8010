/**
 * The register's fast round (one round trip, `proposer.ts`): an acceptor takes at most one fast value per key,
 * whoever sends it; a classic round after a fast one proposes what may have been chosen; and proposers racing for
 * the same keys with fast rounds, over a network that drops, duplicates, reorders and restarts acceptors, never
 * choose two values.
 */
import { describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { Acceptor } from '../../../src/register/acceptor.js';
import { SealedAcceptorStore } from '../../../src/register/acceptor-store.js';
import type { Gathered } from '../../../src/register/gather.js';
import type { RegisterReply, RegisterRequest } from '../../../src/register/messages.js';
import { valueToPropose } from '../../../src/register/fast-round.js';
import { majorities, Proposer } from '../../../src/register/proposer.js';
import { decodeRegister, encodeRegister, registerEnvelopeSchema } from '../../../src/register/wire.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';
import { MemoryAcceptorStore, SimNetwork } from '../../helpers/sim-network.js';
import { seededRandom, VirtualTime } from '../../helpers/virtual-time.js';
import { checkWriteOnce, recordOutcome, type Operation } from '../../helpers/write-once-checker.js';

const SCHEDULES = Math.ceil(Number(process.env.KEYMESH_REGISTER_SCHEDULES ?? 2500) / 5);
const v = (s: string) => new Uint8Array(Buffer.from(s));
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString());

async function sealedAcceptor() {
  const memory = new MemoryStore();
  await memory.start();
  const sealer = new Sealer(ManagementKey.parse(ManagementKey.generate(), 't'), 'node-a');
  const store = new SealedAcceptorStore(new SealedStore(memory, sealer));
  return { acceptor: new Acceptor(store), store };
}

describe('an acceptor in the fast round', () => {
  it('takes one fast value per key, from whoever sends it first, and still refuses others after a restart', async () => {
    const { acceptor, store } = await sealedAcceptor();
    expect(await acceptor.handle({ t: 'fast', key: 'k', ballot: [0, 'b'], value: v('one') })).toEqual({
      t: 'accepted',
    });
    // another proposer's fast value, with a ballot above the first one's, and the same proposer's other value
    expect(await acceptor.handle({ t: 'fast', key: 'k', ballot: [0, 'c'], value: v('two') })).toEqual({
      t: 'nack',
      promised: [0, 'b'],
    });
    expect(await acceptor.handle({ t: 'fast', key: 'k', ballot: [0, 'b'], value: v('three') })).toMatchObject({
      t: 'nack',
    });
    const restarted = new Acceptor(store);
    expect(await restarted.handle({ t: 'fast', key: 'k', ballot: [0, 'z'], value: v('four') })).toMatchObject({
      t: 'nack',
    });
    const promise = await restarted.handle({ t: 'prepare', key: 'k', ballot: [1, 'a'] });
    expect(promise).toMatchObject({ t: 'promise', accepted: { ballot: [0, 'b'] } });
    expect(text((promise as { accepted: { value: Uint8Array } }).accepted.value)).toBe('one');
    expect(await acceptor.handle({ t: 'fast', key: 'other', ballot: [0, 'c'], value: v('x') })).toEqual({
      t: 'accepted',
    });
  });

  it('refuses a fast value after any promise, a classic accept of round 0, and answers a committed key with its value', async () => {
    const { acceptor } = await sealedAcceptor();
    await acceptor.handle({ t: 'prepare', key: 'k', ballot: [1, 'a'] });
    expect(await acceptor.handle({ t: 'fast', key: 'k', ballot: [0, 'b'], value: v('late') })).toEqual({
      t: 'nack',
      promised: [1, 'a'],
    });
    expect(await acceptor.handle({ t: 'accept', key: 'fresh', ballot: [0, 'b'], value: v('x') })).toMatchObject({
      t: 'nack',
    });
    expect(await acceptor.handle({ t: 'read', key: 'fresh' })).toEqual({ t: 'state' });
    await acceptor.handle({ t: 'commit', key: 'done', value: v('chosen') });
    const reply = await acceptor.handle({ t: 'fast', key: 'done', ballot: [0, 'b'], value: v('y') });
    expect(reply.t === 'nack' && text(reply.committed)).toBe('chosen');
  });

  it('never takes a fast value for an erasable key (erasures keep their own rounds)', async () => {
    const { acceptor } = await sealedAcceptor();
    expect(await acceptor.handle({ t: 'fast', key: 'secret/x', ballot: [0, 'b'], value: v('s') })).toMatchObject({
      t: 'nack',
    });
    expect(await acceptor.handle({ t: 'read', key: 'secret/x' })).toEqual({ t: 'state' });
  });

  it('reads a fast request off the wire only with round 0 and a value of at most 64 KiB', () => {
    const envelope = (ballot: [number, string]) =>
      encodeRegister({ v: 1, from: 'a', epoch: 3, request: { t: 'fast', key: 'k', ballot, value: v('x') } });
    expect(decodeRegister(registerEnvelopeSchema, envelope([0, 'a'])).request).toMatchObject({ t: 'fast' });
    expect(() => decodeRegister(registerEnvelopeSchema, envelope([1, 'a']))).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_MESSAGE' }),
    );
    const oversized = encodeRegister({
      v: 1,
      from: 'a',
      epoch: 3,
      request: { t: 'fast', key: 'k', ballot: [0, 'a'], value: new Uint8Array(64 * 1024 + 1) },
    });
    expect(() => decodeRegister(registerEnvelopeSchema, oversized)).toThrow(
      expect.objectContaining({ code: 'ERR_BAD_MESSAGE' }),
    );
  });
});

/** A prepare's answers: promises by node, each with what it accepted (`[round, value]`) or nothing. */
function promises(byNode: Record<string, [number, string] | undefined>): Gathered {
  const from = Object.keys(byNode);
  return {
    positive: from.map((n): RegisterReply => {
      const a = byNode[n];
      return a ? { t: 'promise', accepted: { ballot: [a[0], `p${n}`], value: v(a[1]) } } : { t: 'promise' };
    }),
    positiveFrom: from,
    negative: [],
    failed: 0,
    unreachable: 0,
    quorate: true,
  };
}

describe('the value a classic round proposes after fast rounds', () => {
  const set = majorities(['a', 'b', 'c']);
  const propose = (g: Gathered, quorum = set) => text(valueToPropose(g, quorum, v('mine')));

  it('is the fast value every promise reports (it may have been chosen), else its own candidate', () => {
    expect(propose(promises({ a: [0, 'x'], b: [0, 'x'] }))).toBe('x');
    expect(propose(promises({ a: [0, 'x'], b: undefined }))).toBe('mine');
    expect(propose(promises({ a: [0, 'x'], b: [0, 'y'] }))).toBe('mine');
    expect(propose(promises({ a: undefined, b: undefined }))).toBe('mine');
  });

  it('is the highest classic ballot whenever one was accepted', () => {
    expect(propose(promises({ a: [0, 'x'], b: [2, 'y'] }))).toBe('y');
    expect(propose(promises({ a: [3, 'z'], b: [2, 'y'], c: [0, 'x'] }))).toBe('z');
  });

  it('under a joint quorum, is the value every promise of one group reports, however the other group answered', () => {
    // n0..n2 chose x in a fast round before n3 joined: n3 holds nothing
    const joint = majorities(['n0', 'n1', 'n2'], ['n1', 'n2', 'n3']);
    expect(propose(promises({ n0: [0, 'x'], n1: [0, 'x'], n2: [0, 'x'], n3: undefined }), joint)).toBe('x');
    expect(propose(promises({ n0: [0, 'x'], n1: [0, 'x'], n3: undefined }), joint)).toBe('x');
    expect(propose(promises({ n0: [0, 'x'], n2: undefined, n3: undefined }), joint)).toBe('mine');
  });
});

/** Three in-process acceptors behind a transport that can lose commit markers. */
function threeAcceptors(o: { loseCommits: boolean }) {
  const acceptors = new Map(['a', 'b', 'c'].map((n) => [n, new Acceptor(new MemoryAcceptorStore())]));
  const sent: string[] = [];
  const transport = {
    request: async (to: string, request: RegisterRequest) => {
      sent.push(`${to}:${request.t}`);
      if (o.loseCommits && request.t === 'commit') throw new Error('lost');
      return acceptors.get(to)!.handle(request);
    },
  };
  const proposer = (nodeId: string) =>
    new Proposer({ nodeId, transport, timers: { now: () => Date.now(), sleep: async () => undefined } });
  return { acceptors, sent, transport, proposer };
}

describe('a proposer with the fast round', () => {
  it('creates in one round trip when every replica takes its value', async () => {
    const { sent, proposer } = threeAcceptors({ loseCommits: false });
    const outcome = await proposer('a').propose('k', majorities(['a', 'b', 'c']), v('one'));
    expect({ value: text(outcome.value), roundTrips: outcome.roundTrips }).toEqual({ value: 'one', roundTrips: 1 });
    expect(sent.filter((s) => !s.endsWith(':commit'))).toEqual(['a:fast', 'b:fast', 'c:fast']);
  });

  it('skips the fast round while a replica is known not to answer, and asks about exactly its replicas', async () => {
    const { sent, transport } = threeAcceptors({ loseCommits: false });
    const asked: string[][] = [];
    let answering = false;
    const proposer = new Proposer({
      nodeId: 'a',
      transport,
      timers: { now: () => Date.now(), sleep: async () => undefined },
      fastRoundTo: (nodes) => (asked.push([...nodes]), answering),
    });
    const classic = await proposer.propose('k', majorities(['a', 'b', 'c']), v('one'));
    expect({ value: text(classic.value), roundTrips: classic.roundTrips }).toEqual({ value: 'one', roundTrips: 2 });
    expect(sent.some((s) => s.endsWith(':fast'))).toBe(false);
    answering = true;
    expect((await proposer.propose('k2', majorities(['a', 'b', 'c']), v('two'))).roundTrips).toBe(1);
    expect(asked).toEqual([
      ['a', 'b', 'c'],
      ['a', 'b', 'c'],
    ]);
  });

  it('returns the value a fast round chose to a later proposer, though every commit marker was lost', async () => {
    const { proposer } = threeAcceptors({ loseCommits: true });
    expect(text(await proposer('a').getOrCreate('k', ['a', 'b', 'c'], v('first')))).toBe('first');
    const later = await proposer('b').propose('k', majorities(['a', 'b', 'c']), v('second'));
    expect(text(later.value)).toBe('first');
    expect(later.roundTrips).toBe(3);
    expect(text(await proposer('c').read('k', ['a', 'b', 'c']))).toBe('first');
  });

  it('settles on one value when fast rounds split the replicas', async () => {
    const { acceptors, proposer } = threeAcceptors({ loseCommits: false });
    // two proposers' fast values crossed: a took x, b and c took y; neither proposer heard back
    await acceptors.get('a')!.handle({ t: 'fast', key: 'k', ballot: [0, 'p'], value: v('x') });
    for (const n of ['b', 'c'])
      await acceptors.get(n)!.handle({ t: 'fast', key: 'k', ballot: [0, 'q'], value: v('y') });
    const first = text(await proposer('a').getOrCreate('k', ['a', 'b', 'c'], v('z')));
    for (const p of ['a', 'b', 'c']) {
      expect(text(await proposer(p).getOrCreate('k', ['a', 'b', 'c'], v(`other-${p}`)))).toBe(first);
      expect(text(await proposer(p).read('k', ['a', 'b', 'c']))).toBe(first);
    }
  });
});

/**
 * One schedule of contention: every node's proposer races for the same two keys at nearly the same moment, with
 * reads among them, while messages are dropped, duplicated and reordered and up to `crashes` acceptors restart.
 */
async function raceSchedule(seed: number) {
  const random = seededRandom(seed);
  const time = new VirtualTime();
  const nodes = Array.from({ length: seed % 3 === 0 ? 5 : 3 }, (_, i) => `n${i}`);
  const faults =
    seed % 4 === 0 ? { drop: 0, duplicate: 0, maxDelayMs: 8 } : { drop: 0.08, duplicate: 0.1, maxDelayMs: 20 };
  const net = new SimNetwork(nodes, time, random, faults);
  const proposers = net.proposers(nodes);
  const history: Operation[] = [];
  const roundTrips: number[] = [];
  let pending = 0;
  for (const [p, proposer] of proposers.entries()) {
    for (let i = 0; i < 3; i++) {
      pending += 1;
      time.schedule(Math.floor(random() * 10), () => {
        const key = random() < 0.5 ? 'k1' : 'k2';
        const isRead = random() < 0.2;
        const op: Operation = {
          key,
          kind: isRead ? 'read' : 'getOrCreate',
          ...(isRead ? {} : { candidate: `${nodes[p]}-${i}` }),
          invokedAt: time.now(),
        };
        history.push(op);
        const call = isRead
          ? proposer.readOutcome(key, majorities(nodes))
          : proposer.propose(key, majorities(nodes), v(op.candidate!));
        const value = call.then((outcome) => {
          if (!isRead) roundTrips.push(outcome.roundTrips);
          return outcome.value;
        });
        recordOutcome(op, value, { now: () => time.now(), done: () => (pending -= 1) });
      });
    }
  }
  if (seed % 2 === 1) net.crashSome(2, 60);
  await time.run(() => pending === 0);
  return { history, pending, roundTrips };
}

describe('proposers racing with fast rounds (simulated network)', () => {
  it(`never choose two values for a key, over ${SCHEDULES} contended schedules`, async () => {
    const trips: number[] = [];
    for (let seed = 1; seed <= SCHEDULES; seed++) {
      const { history, pending, roundTrips } = await raceSchedule(seed);
      expect(pending, `seed ${seed}: operations left hanging`).toBe(0);
      expect(checkWriteOnce(history), `seed ${seed}`).toEqual([]);
      trips.push(...roundTrips);
    }
    // both paths ran: creates the fast round decided alone, and creates that went on to classic rounds
    expect(trips.filter((t) => t === 1).length).toBeGreaterThan(SCHEDULES / 10);
    expect(trips.filter((t) => t > 1).length).toBeGreaterThan(SCHEDULES / 10);
  }, 120_000);
});
