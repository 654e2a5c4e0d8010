/**
 * The proposer's erasure rules on three acceptors, with per-replica delays on virtual time, so the order in which
 * replicas answer is chosen by the test: a stale replica that answers first must never decide alone.
 */
import { describe, expect, it } from 'vitest';
import { Acceptor } from '../../../src/register/acceptor.js';
import type { RegisterReply, RegisterRequest } from '../../../src/register/messages.js';
import { Proposer, type RegisterTransport } from '../../../src/register/proposer.js';
import { isTombstone, tombstone } from '../../../src/register/tombstone.js';
import { MemoryAcceptorStore } from '../../helpers/sim-network.js';
import { seededRandom, VirtualTime } from '../../helpers/virtual-time.js';

const NODES = ['a', 'b', 'c'];
const KEY = 'secret/user-1';
const text = (b: Uint8Array | undefined) =>
  b === undefined ? undefined : isTombstone(b) ? 'ERASED' : Buffer.from(b).toString();

function setup() {
  const time = new VirtualTime();
  const stores = new Map(NODES.map((n) => [n, new MemoryAcceptorStore()]));
  const acceptors = new Map(NODES.map((n) => [n, new Acceptor(stores.get(n)!)]));
  const delays = new Map(NODES.map((n) => [n, 1]));
  const down = new Set<string>();
  const transport: RegisterTransport = {
    request: (to: string, request: RegisterRequest, timeoutMs: number) =>
      new Promise<RegisterReply>((resolve, reject) => {
        if (down.has(to)) return time.schedule(timeoutMs, () => reject(new Error('timeout')));
        time.schedule(delays.get(to)!, () => void acceptors.get(to)!.handle(request).then(resolve, reject));
      }),
  };
  const proposer = (id: string) =>
    new Proposer({
      nodeId: id,
      transport,
      timers: time,
      random: seededRandom(1),
      settings: { requestTimeoutMs: 50, deadlineMs: 1_000 },
    });
  /** Runs `call` to completion on virtual time. */
  const run = async <T>(call: Promise<T>): Promise<T> => {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    call.then(
      (value) => (outcome = { ok: true, value }),
      (error: unknown) => (outcome = { ok: false, error }),
    );
    await time.run(() => outcome !== undefined, 10_000);
    if (!outcome) throw new Error('the call did not finish');
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  };
  const committedAt = async (n: string) => text((await stores.get(n)!.load(KEY))?.committed);
  return { acceptors, delays, down, proposer, run, committedAt };
}

describe('erasing a register value', () => {
  it('replaces the chosen value by the tombstone on every replica; reads and get-or-create return it from then on', async () => {
    const { proposer, run, committedAt } = setup();
    expect(text(await run(proposer('a').getOrCreate(KEY, NODES, Buffer.from('secret-1'))))).toBe('secret-1');
    expect(text((await run(proposer('b').erase(KEY, NODES))).value)).toBe('ERASED');
    await run(Promise.resolve());
    for (const n of NODES) expect(await committedAt(n)).toBe('ERASED');
    expect(text(await run(proposer('c').read(KEY, NODES)))).toBe('ERASED');
    expect(text(await run(proposer('c').getOrCreate(KEY, NODES, Buffer.from('secret-2'))))).toBe('ERASED');
  });

  it('writes the tombstone for a key that holds nothing, so nothing is ever created there', async () => {
    const { proposer, run } = setup();
    expect(text((await run(proposer('a').erase(KEY, NODES))).value)).toBe('ERASED');
    expect(text(await run(proposer('b').getOrCreate(KEY, NODES, Buffer.from('secret-1'))))).toBe('ERASED');
  });

  it('returns the tombstone to a read and a get-or-create when a stale replica answers first', async () => {
    const { proposer, run, down, delays, committedAt } = setup();
    await run(proposer('a').getOrCreate(KEY, NODES, Buffer.from('secret-1')));
    down.add('c');
    await run(proposer('a').erase(KEY, NODES));
    down.delete('c');
    expect(await committedAt('c')).toBe('secret-1');
    // c still holds the old value and answers long before the replicas that hold the tombstone
    delays.set('a', 20).set('b', 20).set('c', 0);
    expect(text(await run(proposer('c').read(KEY, NODES)))).toBe('ERASED');
    expect(text(await run(proposer('c').getOrCreate(KEY, NODES, Buffer.from('secret-2'))))).toBe('ERASED');
    // whoever met the stale replica sent it the tombstone
    expect(await committedAt('c')).toBe('ERASED');
  });

  it('finishes, at the next read, an erasure that reached only one acceptor', async () => {
    const { proposer, run, acceptors, committedAt } = setup();
    await run(proposer('a').getOrCreate(KEY, NODES, Buffer.from('secret-1')));
    // an erasure whose proposer died after its accept reached a alone
    await acceptors.get('a')!.handle({ t: 'prepare', key: KEY, ballot: [50, 'x'], erase: true });
    await acceptors.get('a')!.handle({ t: 'accept', key: KEY, ballot: [50, 'x'], value: tombstone() });
    expect(text(await run(proposer('b').read(KEY, NODES)))).toBe('ERASED');
    await run(Promise.resolve());
    for (const n of NODES) expect(await committedAt(n)).toBe('ERASED');
  });

  it('does not serve a committed value from a minority of replicas: a majority it cannot reach may have erased it', async () => {
    const { proposer, run, down } = setup();
    await run(proposer('a').getOrCreate(KEY, NODES, Buffer.from('secret-1')));
    down.add('a').add('b');
    await expect(run(proposer('c').read(KEY, NODES))).rejects.toMatchObject({ code: 'ERR_UNAVAILABLE' });
    await expect(run(proposer('c').getOrCreate(KEY, NODES, Buffer.from('secret-2')))).rejects.toMatchObject({
      code: 'ERR_UNAVAILABLE',
    });
  });

  it('refuses to erase a key outside the erasable namespaces', async () => {
    const { proposer, run } = setup();
    await expect(run(proposer('a').erase('kv/k', NODES))).rejects.toMatchObject({ code: 'ERR_INVALID_REQUEST' });
  });
});
