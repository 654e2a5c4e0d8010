import { describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { Acceptor } from '../../../src/register/acceptor.js';
import { SealedAcceptorStore } from '../../../src/register/acceptor-store.js';
import { isTombstone, tombstone } from '../../../src/register/tombstone.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';

async function setup() {
  const memory = new MemoryStore();
  await memory.start();
  const store = new SealedAcceptorStore(
    new SealedStore(memory, new Sealer(ManagementKey.parse(ManagementKey.generate(), 't'), 'node-a')),
  );
  const erased: string[] = [];
  return { acceptor: new Acceptor(store, { onErased: (key) => erased.push(key) }), store, erased };
}

const v = (s: string) => new Uint8Array(Buffer.from(s));
const KEY = 'secret/user-1';

describe('acceptor of an erasable register', () => {
  it('replaces a committed value by the tombstone, drops the old bytes from its state and says so', async () => {
    const { acceptor, store, erased } = await setup();
    await acceptor.handle({ t: 'accept', key: KEY, ballot: [1, 'a'], value: v('old-secret') });
    await acceptor.handle({ t: 'commit', key: KEY, value: v('old-secret') });
    expect(await acceptor.handle({ t: 'commit', key: KEY, value: tombstone() })).toEqual({ t: 'ack' });
    const state = await store.load(KEY);
    expect(isTombstone(state?.committed)).toBe(true);
    expect(state?.accepted).toBeUndefined();
    expect(erased).toEqual([KEY]);
  });

  it('never replaces a committed tombstone: a stale commit is ignored, prepares answer with it, accepts are refused', async () => {
    const { acceptor, store } = await setup();
    await acceptor.handle({ t: 'commit', key: KEY, value: tombstone() });
    expect(await acceptor.handle({ t: 'commit', key: KEY, value: v('stale-secret') })).toEqual({ t: 'ack' });
    expect(isTombstone((await store.load(KEY))?.committed)).toBe(true);
    const promise = await acceptor.handle({ t: 'prepare', key: KEY, ballot: [9, 'b'], erase: true });
    expect(promise.t === 'promise' && isTombstone(promise.committed)).toBe(true);
    const refused = await acceptor.handle({ t: 'accept', key: KEY, ballot: [9, 'b'], value: v('new-secret') });
    expect(refused.t === 'nack' && isTombstone(refused.committed)).toBe(true);
  });

  it('promises an erasure round over a committed value and accepts only the tombstone over it', async () => {
    const { acceptor, store } = await setup();
    await acceptor.handle({ t: 'commit', key: KEY, value: v('old-secret') });
    // a plain prepare is answered with the value, and promises nothing
    expect(await acceptor.handle({ t: 'prepare', key: KEY, ballot: [5, 'b'] })).toMatchObject({
      t: 'promise',
      committed: v('old-secret'),
    });
    expect((await store.load(KEY))?.promised).toEqual([0, '']);
    expect(await acceptor.handle({ t: 'prepare', key: KEY, ballot: [5, 'b'], erase: true })).toMatchObject({
      t: 'promise',
      committed: v('old-secret'),
    });
    expect(await acceptor.handle({ t: 'prepare', key: KEY, ballot: [4, 'c'], erase: true })).toMatchObject({
      t: 'nack',
      promised: [5, 'b'],
    });
    expect(await acceptor.handle({ t: 'accept', key: KEY, ballot: [5, 'b'], value: v('other-secret') })).toMatchObject({
      t: 'nack',
    });
    expect(await acceptor.handle({ t: 'accept', key: KEY, ballot: [5, 'b'], value: tombstone() })).toEqual({
      t: 'accepted',
    });
    // the tombstone accepted over the committed value is shown to whoever asks next
    const next = await acceptor.handle({ t: 'prepare', key: KEY, ballot: [6, 'c'] });
    expect(next.t === 'promise' && isTombstone(next.accepted?.value)).toBe(true);
  });

  it("keeps every other namespace write-once, even for a value with the tombstone's bytes", async () => {
    const { acceptor, store, erased } = await setup();
    await acceptor.handle({ t: 'commit', key: 'kv/k', value: v('chosen') });
    await acceptor.handle({ t: 'commit', key: 'kv/k', value: tombstone() });
    expect(Buffer.from((await store.load('kv/k'))!.committed!).toString()).toBe('chosen');
    expect(await acceptor.handle({ t: 'prepare', key: 'kv/k', ballot: [3, 'a'], erase: true })).toEqual({
      t: 'promise',
      committed: v('chosen'),
    });
    expect(erased).toEqual([]);
  });
});
