import { describe, expect, it, vi } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { Acceptor } from '../../../src/register/acceptor.js';
import { SealedAcceptorStore } from '../../../src/register/acceptor-store.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';

async function setup(memory = new MemoryStore(), mk = ManagementKey.generate()) {
  await memory.start();
  const store = new SealedAcceptorStore(new SealedStore(memory, new Sealer(ManagementKey.parse(mk, 't'), 'node-a')));
  return { acceptor: new Acceptor(store), store, memory, mk };
}

const v = (s: string) => new Uint8Array(Buffer.from(s));

describe('acceptor', () => {
  it('promises only above its promise, accepts at or above it, and reports what it accepted', async () => {
    const { acceptor } = await setup();
    expect(await acceptor.handle({ t: 'prepare', key: 'k', ballot: [2, 'a'] })).toEqual({ t: 'promise' });
    expect(await acceptor.handle({ t: 'prepare', key: 'k', ballot: [1, 'b'] })).toEqual({
      t: 'nack',
      promised: [2, 'a'],
    });
    expect(await acceptor.handle({ t: 'prepare', key: 'k', ballot: [2, 'a'] })).toMatchObject({ t: 'nack' });
    expect(await acceptor.handle({ t: 'accept', key: 'k', ballot: [1, 'z'], value: v('old') })).toMatchObject({
      t: 'nack',
    });
    expect(await acceptor.handle({ t: 'accept', key: 'k', ballot: [2, 'a'], value: v('x') })).toEqual({
      t: 'accepted',
    });
    const again = await acceptor.handle({ t: 'prepare', key: 'k', ballot: [3, 'b'] });
    expect(again).toMatchObject({ t: 'promise', accepted: { ballot: [2, 'a'] } });
  });

  it('answers with the chosen value once committed, and keeps keys apart', async () => {
    const { acceptor } = await setup();
    await acceptor.handle({ t: 'commit', key: 'k', value: v('chosen') });
    const reply = await acceptor.handle({ t: 'prepare', key: 'k', ballot: [9, 'a'] });
    expect(reply.t === 'promise' && Buffer.from(reply.committed!).toString()).toBe('chosen');
    expect(await acceptor.handle({ t: 'prepare', key: 'other', ballot: [1, 'a'] })).toEqual({ t: 'promise' });
  });

  it('remembers promises and accepted values across a restart, sealed on disk', async () => {
    const first = await setup();
    await first.acceptor.handle({ t: 'prepare', key: 'k', ballot: [5, 'a'] });
    await first.acceptor.handle({ t: 'accept', key: 'k', ballot: [5, 'a'], value: v('secret-value') });
    for await (const [, raw] of first.memory.entries('reg/'))
      expect(Buffer.from(raw).includes(Buffer.from('secret-value'))).toBe(false);
    await first.memory.stop();
    const second = await setup(first.memory, first.mk);
    expect(await second.acceptor.handle({ t: 'prepare', key: 'k', ballot: [4, 'z'] })).toEqual({
      t: 'nack',
      promised: [5, 'a'],
    });
    const state = await second.store.load('k');
    expect(Buffer.from(state!.accepted!.value).toString()).toBe('secret-value');
  });

  it('reports corrupt stored state after a restart instead of answering from it', async () => {
    const { acceptor, memory, mk } = await setup();
    await acceptor.handle({ t: 'prepare', key: 'k', ballot: [1, 'a'] });
    await memory.put('reg/k', new Uint8Array([1, 2, 3]));
    const restarted = await setup(memory, mk);
    await expect(restarted.acceptor.handle({ t: 'prepare', key: 'k', ballot: [2, 'a'] })).rejects.toMatchObject({
      code: 'ERR_RECORD_CORRUPT',
    });
  });

  it('group-commits saves of many keys and keeps each one on disk', async () => {
    const { acceptor, memory, mk } = await setup();
    const keys = Array.from({ length: 50 }, (_, i) => `g${i}`);
    await Promise.all(keys.map((k) => acceptor.handle({ t: 'accept', key: k, ballot: [1, 'a'], value: v(k) })));
    const restarted = await setup(memory, mk);
    for (const k of keys) {
      const state = await restarted.store.load(k);
      expect(state?.accepted?.ballot).toEqual([1, 'a']);
      expect(Buffer.from(state!.accepted!.value).toString()).toBe(k);
    }
  });

  it('writes the commit markers of one turn in one batch, synced only when it carries a promise or a value', async () => {
    const { acceptor, memory, mk } = await setup();
    const keys = Array.from({ length: 20 }, (_, i) => `c${i}`);
    await Promise.all(keys.map((k) => acceptor.handle({ t: 'fast', key: k, ballot: [0, 'a'], value: v(k) })));
    const calls: { ops: number; sync: boolean }[] = [];
    const batch = memory.batch.bind(memory);
    memory.batch = (ops, options) => {
      calls.push({ ops: ops.length, sync: options?.sync === true });
      return batch(ops, options);
    };
    await Promise.all(keys.map((k) => acceptor.handle({ t: 'commit', key: k, value: v(k) })));
    expect(calls).toEqual([{ ops: keys.length, sync: false }]);
    const restarted = await setup(memory, mk);
    for (const k of keys) expect(Buffer.from((await restarted.store.load(k))!.committed!).toString()).toBe(k);

    // markers that come while a synced batch is on its way ride in the next one, with the accepts it carries
    calls.length = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    memory.batch = async (ops, options) => {
      calls.push({ ops: ops.length, sync: options?.sync === true });
      if (calls.length === 1) await gate;
      return batch(ops, options);
    };
    const first = acceptor.handle({ t: 'fast', key: 'd', ballot: [0, 'a'], value: v('d') });
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    const rest = [
      acceptor.handle({ t: 'fast', key: 'e', ballot: [0, 'a'], value: v('e') }),
      ...keys.map((k) => acceptor.handle({ t: 'commit', key: `${k}-y`, value: v(k) })),
    ];
    await new Promise((r) => setImmediate(r));
    release();
    await Promise.all([first, ...rest]);
    expect(calls).toEqual([
      { ops: 2, sync: true },
      { ops: keys.length + 2, sync: true },
    ]);

    memory.batch = () => Promise.reject(new Error('disk full'));
    const failing = keys.map((k) => acceptor.handle({ t: 'commit', key: `${k}-x`, value: v(k) }));
    for (const result of failing) await expect(result).rejects.toThrow('disk full');
  });
});
