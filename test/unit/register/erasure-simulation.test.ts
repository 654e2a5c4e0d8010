import { describe, expect, it } from 'vitest';
import { isTombstone } from '../../../src/register/tombstone.js';
import { checkErasure, ERASED, type ErasureOperation } from '../../helpers/erasure-checker.js';
import { recordOutcome } from '../../helpers/write-once-checker.js';
import { SimNetwork } from '../../helpers/sim-network.js';
import { seededRandom, VirtualTime } from '../../helpers/virtual-time.js';

const SCHEDULES = Math.ceil(Number(process.env.KEYMESH_REGISTER_SCHEDULES ?? 2500) / 5);
const text = (b: Uint8Array) => (isTombstone(b) ? ERASED : Buffer.from(b).toString());

/** One random schedule of get-or-create, read and erase on two erasable keys, with drops, duplicates and crashes. */
async function runSchedule(seed: number) {
  const random = seededRandom(seed);
  const time = new VirtualTime();
  const nodes = Array.from({ length: seed % 4 === 0 ? 5 : 3 }, (_, i) => `n${i}`);
  const net = new SimNetwork(nodes, time, random, { drop: 0.1, duplicate: 0.1, maxDelayMs: 20 });
  const proposers = net.proposers(nodes);
  const keys = ['secret/k1', 'secret/k2'];
  const history: ErasureOperation[] = [];
  let pending = 0;
  for (let p = 0; p < nodes.length; p++) {
    for (let i = 0; i < 5; i++) {
      pending += 1;
      time.schedule(Math.floor(random() * 300), () => {
        const key = keys[Math.floor(random() * keys.length)]!;
        const roll = random();
        const kind = roll < 0.15 ? 'erase' : roll < 0.5 ? 'read' : 'getOrCreate';
        const op: ErasureOperation = {
          key,
          kind,
          ...(kind === 'getOrCreate' ? { candidate: `n${p}-${seed}-${history.length}` } : {}),
          invokedAt: time.now(),
        };
        history.push(op);
        const proposer = proposers[p]!;
        const call =
          kind === 'erase'
            ? proposer.erase(key, nodes).then((o) => o.value)
            : kind === 'read'
              ? proposer.read(key, nodes)
              : proposer.getOrCreate(key, nodes, Buffer.from(op.candidate!));
        recordOutcome(op, call, { now: () => time.now(), done: () => (pending -= 1), text });
      });
    }
  }
  net.crashSome(3, 400);
  await time.run(() => pending === 0);
  return { history, pending };
}

describe('an erasable register (simulated network)', () => {
  it(`never returns a value after its tombstone, nor a second value, over ${SCHEDULES} random schedules with faults`, async () => {
    let erased = 0;
    for (let seed = 1; seed <= SCHEDULES; seed++) {
      const { history, pending } = await runSchedule(seed);
      expect(pending, `seed ${seed}: operations left hanging`).toBe(0);
      expect(checkErasure(history), `seed ${seed}`).toEqual([]);
      erased += history.filter((o) => o.result?.ok && o.result.value === ERASED && o.kind !== 'erase').length;
    }
    // the schedules do meet tombstones: reads and get-or-creates return them
    expect(erased).toBeGreaterThan(SCHEDULES);
  }, 120_000);

  it('catches a value after the tombstone, two values and a read that lost the value (the checker can fail)', () => {
    const op = (o: Partial<ErasureOperation> & Pick<ErasureOperation, 'kind'>): ErasureOperation => ({
      key: 'k',
      invokedAt: 0,
      completedAt: 1,
      ...o,
    });
    expect(
      checkErasure([
        op({ kind: 'erase', result: { ok: true, value: ERASED } }),
        op({ kind: 'getOrCreate', candidate: 'a', invokedAt: 2, completedAt: 3, result: { ok: true, value: 'a' } }),
      ]),
    ).toHaveLength(1);
    expect(
      checkErasure([
        op({ kind: 'getOrCreate', candidate: 'a', result: { ok: true, value: 'a' } }),
        op({ kind: 'getOrCreate', candidate: 'b', result: { ok: true, value: 'b' } }),
      ]),
    ).toHaveLength(1);
    expect(
      checkErasure([
        op({ kind: 'getOrCreate', candidate: 'a', result: { ok: true, value: 'a' } }),
        op({ kind: 'read', invokedAt: 2, completedAt: 3, result: { ok: true, value: undefined } }),
      ]),
    ).toHaveLength(1);
    expect(
      checkErasure([
        op({ kind: 'getOrCreate', candidate: 'a', result: { ok: true, value: 'a' } }),
        op({ kind: 'erase', invokedAt: 2, completedAt: 3, result: { ok: true, value: ERASED } }),
        op({ kind: 'read', invokedAt: 4, completedAt: 5, result: { ok: true, value: ERASED } }),
      ]),
    ).toEqual([]);
  });
});
