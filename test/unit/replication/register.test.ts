import { describe, expect, it } from 'vitest';
import { isKeymeshError } from '../../../src/errors.js';
import { Proposer } from '../../../src/replication/proposer.js';
import { SimNetwork, type Faults } from '../../helpers/sim-network.js';
import { seededRandom, VirtualTime } from '../../helpers/virtual-time.js';
import { checkWriteOnce, type Operation } from '../../helpers/write-once-checker.js';

const SCHEDULES = Number(process.env.KEYMESH_REGISTER_SCHEDULES ?? 2500);
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : Buffer.from(b).toString());

/** Runs one random schedule; returns the history and the network's node names. */
async function runSchedule(seed: number, faults: Faults, options: { replicas: number; crashes: boolean }) {
  const random = seededRandom(seed);
  const time = new VirtualTime();
  const nodes = Array.from({ length: options.replicas }, (_, i) => `n${i}`);
  const net = new SimNetwork(nodes, time, random, faults);
  const proposers = nodes.map((n) => new Proposer({ nodeId: n, transport: net.transport(n), timers: time, random, settings: { requestTimeoutMs: 50, deadlineMs: 2_000 } }));
  const keys = ['k1', 'k2'];
  const history: Operation[] = [];
  let pending = 0;
  const issue = (p: number, delay: number) => {
    pending += 1;
    time.schedule(delay, () => {
      const key = keys[Math.floor(random() * keys.length)]!;
      const isRead = random() < 0.35;
      const op: Operation = { key, kind: isRead ? 'read' : 'getOrCreate', ...(isRead ? {} : { candidate: `${nodes[p]}-${seed}-${history.length}` }), invokedAt: time.now() };
      history.push(op);
      const call = isRead ? proposers[p]!.read(key, nodes) : proposers[p]!.getOrCreate(key, nodes, Buffer.from(op.candidate!));
      call.then(
        (v) => {
          op.result = { ok: true, value: text(v) };
        },
        (err: unknown) => {
          if (!isKeymeshError(err)) throw err;
          op.result = { ok: false, code: err.code };
        },
      ).finally(() => {
        op.completedAt = time.now();
        pending -= 1;
      });
    });
  };
  for (let p = 0; p < nodes.length; p++) for (let i = 0; i < 4; i++) issue(p, Math.floor(random() * 200));
  if (options.crashes) {
    for (let c = 0; c < 3; c++) {
      const victim = nodes[Math.floor(random() * nodes.length)]!;
      time.schedule(Math.floor(random() * 300), () => {
        const downNow = nodes.filter((n) => net.isDown(n)).length;
        if (downNow < Math.floor((nodes.length - 1) / 2) && !net.isDown(victim)) net.crash(victim, 20 + Math.floor(random() * 150));
      });
    }
  }
  await time.run(() => pending === 0);
  return { history, pending };
}

describe('per-key register (simulated network)', () => {
  it('completes every operation with one value per key when nothing fails', async () => {
    const { history } = await runSchedule(1, { drop: 0, duplicate: 0, maxDelayMs: 5 }, { replicas: 3, crashes: false });
    expect(history.every((o) => o.result?.ok)).toBe(true);
    expect(checkWriteOnce(history)).toEqual([]);
  });

  it(`stays linearizable over ${SCHEDULES} random schedules with drops, duplicates, reordering and crash-restarts`, async () => {
    let succeeded = 0;
    let total = 0;
    for (let seed = 1; seed <= SCHEDULES; seed++) {
      const replicas = seed % 4 === 0 ? 5 : 3;
      const { history, pending } = await runSchedule(seed, { drop: 0.1, duplicate: 0.1, maxDelayMs: 20 }, { replicas, crashes: true });
      expect(pending, `seed ${seed}: operations left hanging`).toBe(0);
      const problems = checkWriteOnce(history);
      expect(problems, `seed ${seed}`).toEqual([]);
      total += history.length;
      succeeded += history.filter((o) => o.result?.ok).length;
    }
    // liveness under these faults: most operations finish (a minority of replicas is ever down)
    expect(succeeded / total).toBeGreaterThan(0.9);
  }, 120_000);

  it('fails with ERR_UNAVAILABLE, never a second value, when a majority is down', async () => {
    const time = new VirtualTime();
    const random = seededRandom(7);
    const net = new SimNetwork(['a', 'b', 'c'], time, random, { drop: 0, duplicate: 0, maxDelayMs: 2 });
    const p = new Proposer({ nodeId: 'a', transport: net.transport('a'), timers: time, random, settings: { requestTimeoutMs: 20, deadlineMs: 200 } });
    let first: string | undefined;
    void p.getOrCreate('k', ['a', 'b', 'c'], Buffer.from('one')).then((v) => (first = text(v)));
    await time.run(() => first !== undefined);
    expect(first).toBe('one');
    net.crash('b', 10_000);
    net.crash('c', 10_000);
    let error: unknown;
    void p.getOrCreate('k2', ['a', 'b', 'c'], Buffer.from('two')).catch((e: unknown) => (error = e));
    await time.run(() => error !== undefined, 5_000);
    expect(error).toMatchObject({ code: 'ERR_UNAVAILABLE' });
    let second: string | undefined;
    void p.getOrCreate('k', ['a', 'b', 'c'], Buffer.from('other')).then((v) => (second = text(v)));
    await time.run(() => second !== undefined, 20_000);
    expect(second).toBe('one');
  });
});

describe('write-once checker', () => {
  it('catches two values, invented values and stale reads', () => {
    const op = (o: Partial<Operation> & Pick<Operation, 'kind'>): Operation => ({ key: 'k', invokedAt: 0, completedAt: 1, ...o });
    expect(checkWriteOnce([op({ kind: 'getOrCreate', candidate: 'a', result: { ok: true, value: 'a' } }), op({ kind: 'getOrCreate', candidate: 'b', result: { ok: true, value: 'b' } })])).toHaveLength(1);
    expect(checkWriteOnce([op({ kind: 'getOrCreate', candidate: 'a', result: { ok: true, value: 'z' } })])).toHaveLength(1);
    expect(checkWriteOnce([op({ kind: 'getOrCreate', candidate: 'a', result: { ok: true, value: 'a' } }), op({ kind: 'read', invokedAt: 5, completedAt: 6, result: { ok: true, value: undefined } })])).toHaveLength(1);
    expect(checkWriteOnce([op({ kind: 'read', invokedAt: 0, completedAt: 9, result: { ok: true, value: undefined } }), op({ kind: 'getOrCreate', candidate: 'a', invokedAt: 1, completedAt: 2, result: { ok: true, value: 'a' } })])).toEqual([]);
  });
});
