/**
 * Bounded register state: expiring records carry their expiry in the value, every replica removes them once the
 * expiry plus the grace has passed, and the work of finding them follows what expired, not what is held.
 */
import { describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { Acceptor } from '../../../src/register/acceptor.js';
import { PROMISE_KEPT_S, SealedAcceptorStore } from '../../../src/register/acceptor-store.js';
import { expiryOf, isExpiringKey, MAX_EXPIRY_S, withExpiry, withoutExpiry } from '../../../src/register/expiring.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const GRACE_MS = 10_000;
const v = (s: string) => new Uint8Array(Buffer.from(s));

/** A memory store that counts the keys its iterations hand out. */
class CountingStore extends MemoryStore {
  iterated = 0;
  override async *keys(prefix: string): AsyncIterable<string> {
    for await (const key of super.keys(prefix)) {
      this.iterated += 1;
      yield key;
    }
  }
}

async function setup(memory = new CountingStore(), clock = new FakeClock(), mk = ManagementKey.generate()) {
  await memory.start();
  const store = new SealedAcceptorStore(new SealedStore(memory, new Sealer(ManagementKey.parse(mk, 't'), 'node-a')), {
    clock,
    expiryGraceMs: GRACE_MS,
  });
  await store.index();
  return { acceptor: new Acceptor(store), store, memory, clock, mk };
}

const nowS = (clock: FakeClock) => Math.floor(clock.now() / 1000);

/** A full round on one acceptor: prepare, accept and commit `value` for `key`. */
async function create(acceptor: Acceptor, key: string, value: Uint8Array): Promise<void> {
  await acceptor.handle({ t: 'prepare', key, ballot: [1, 'a'] });
  await acceptor.handle({ t: 'accept', key, ballot: [1, 'a'], value });
  await acceptor.handle({ t: 'commit', key, value });
}

async function stored(memory: MemoryStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of memory.keys(prefix)) keys.push(key);
  return keys;
}

describe('the expiry header', () => {
  it('travels in front of the payload and comes off again', () => {
    const value = withExpiry(1_800_000_000, v('payload'));
    expect(expiryOf(value)).toBe(1_800_000_000);
    expect(Buffer.from(withoutExpiry(value)).toString()).toBe('payload');
  });

  it('leaves values without a header alone, and refuses an expiry out of range', () => {
    for (const plain of [v(''), v('KM sealed'), new Uint8Array([0x82, 0xa1]), new Uint8Array([0xff])]) {
      expect(expiryOf(plain)).toBeUndefined();
      expect(withoutExpiry(plain)).toBe(plain);
    }
    for (const bad of [-1, 1.5, MAX_EXPIRY_S + 1, Number.NaN]) expect(() => withExpiry(bad, v('x'))).toThrow(/expiry/);
  });

  it('applies to the replay, revocation, renewal and token-store namespaces only', () => {
    expect(['jti/a', 'dpop/a', 'revoked/a', 'renewed/a', 'token/a'].every(isExpiringKey)).toBe(true);
    expect(['secret/a', 'kv/a', 'map/1', 'jtix', 'x/jti/a'].some(isExpiringKey)).toBe(false);
  });
});

describe('expired register records', () => {
  it('are removed once their expiry plus the grace has passed, and not a second earlier', async () => {
    const { acceptor, store, memory, clock } = await setup();
    const expiry = nowS(clock) + 60;
    await create(acceptor, 'jti/one', withExpiry(expiry, v('r')));
    await create(acceptor, 'dpop/two', withExpiry(expiry + 3600, v('r')));
    clock.set(expiry * 1000 + GRACE_MS - 1_000);
    expect(await store.sweep()).toBe(0);
    expect(await store.load('jti/one')).toBeDefined();
    clock.set(expiry * 1000 + GRACE_MS + 1_000);
    expect(await store.sweep()).toBe(1);
    expect(await store.load('jti/one')).toBeUndefined();
    expect(await store.load('dpop/two')).toBeDefined();
    expect(store.keys()).toEqual(['dpop/two']);
    expect(await stored(memory, 'reg/')).toEqual(['reg/dpop/two']);
    expect((await stored(memory, 'rexp/')).map((k) => k.replace(/^rexp\/[0-9a-f]{12}\//, ''))).toEqual(['dpop/two']);
  });

  it('never touches user secrets, the map or operator registers, whatever their value looks like', async () => {
    const { acceptor, store, clock } = await setup();
    const lookalike = withExpiry(nowS(clock) - 3600, v('old'));
    for (const key of ['secret/u', 'map/1', 'kv/op']) await create(acceptor, key, lookalike);
    // written before expiries existed: no header, so kept
    await create(acceptor, 'revoked/legacy', new Uint8Array(8));
    clock.advance(365 * 86_400_000);
    expect(await store.sweep()).toBe(0);
    expect(store.keys().sort()).toEqual(['kv/op', 'map/1', 'revoked/legacy', 'secret/u']);
  });

  it('keeps a promise with no value for PROMISE_KEPT_S, longer when renewed, and a value brings its own expiry', async () => {
    const { acceptor, store, clock } = await setup();
    await acceptor.handle({ t: 'prepare', key: 'jti/abandoned', ballot: [1, 'a'] });
    await acceptor.handle({ t: 'prepare', key: 'jti/renewed', ballot: [1, 'a'] });
    await acceptor.handle({ t: 'prepare', key: 'jti/valued', ballot: [1, 'a'] });
    clock.advance((PROMISE_KEPT_S - 60) * 1000);
    await acceptor.handle({ t: 'prepare', key: 'jti/renewed', ballot: [2, 'b'] });
    await acceptor.handle({
      t: 'accept',
      key: 'jti/valued',
      ballot: [1, 'a'],
      value: withExpiry(nowS(clock) + 3600, v('r')),
    });
    clock.advance(120_000 + GRACE_MS);
    expect(await store.sweep()).toBe(1);
    expect(store.keys().sort()).toEqual(['jti/renewed', 'jti/valued']);
    // the renewed promise still stands: a lower ballot is refused
    expect(await acceptor.handle({ t: 'accept', key: 'jti/renewed', ballot: [1, 'a'], value: v('x') })).toMatchObject({
      t: 'nack',
      promised: [2, 'b'],
    });
  });

  it('are removed by the first sweep after a start when they expired while the node was down, and stay gone', async () => {
    const first = await setup();
    const expiry = nowS(first.clock) + 60;
    for (let i = 0; i < 20; i++)
      await create(first.acceptor, `token/${i}`, withExpiry(i < 15 ? expiry : expiry + 86_400, v('t')));
    first.clock.set(expiry * 1000 + GRACE_MS + 1_000);
    const second = await setup(first.memory, first.clock, first.mk);
    // the start only lists them; the sweep that follows it removes them
    expect(second.store.size).toBe(20);
    expect(await second.store.sweep()).toBe(15);
    expect(second.store.size).toBe(5);
    expect(await second.acceptor.handle({ t: 'read', key: 'token/0' })).toEqual({ t: 'state' });
    expect((await stored(first.memory, 'reg/')).length).toBe(5);
    expect((await stored(first.memory, 'rexp/')).length).toBe(5);
  });

  it('cost a sweep work in what expired, not in what is held', async () => {
    const { acceptor, store, memory, clock } = await setup();
    for (let i = 0; i < 300; i++) await create(acceptor, `dpop/${i}`, withExpiry(nowS(clock) + 3600 + i, v('r')));
    memory.iterated = 0;
    expect(await store.sweep()).toBe(0);
    // one seek to the first index entry, which is due later: nothing else is read
    expect(memory.iterated).toBe(1);
    clock.advance((3600 + 10) * 1000 + GRACE_MS);
    memory.iterated = 0;
    expect(await store.sweep()).toBe(11);
    expect(memory.iterated).toBe(12);
  });

  it('keep a record saved while the sweep that found it expired was running', async () => {
    const { acceptor, store, clock } = await setup();
    await acceptor.handle({ t: 'prepare', key: 'jti/busy', ballot: [1, 'a'] });
    clock.advance((PROMISE_KEPT_S + 1) * 1000 + GRACE_MS);
    const sweeping = store.sweep();
    // a new promise arrives while the sweep reads the record
    await acceptor.handle({ t: 'prepare', key: 'jti/busy', ballot: [5, 'b'] });
    await sweeping;
    expect(await store.load('jti/busy')).toMatchObject({ promised: [5, 'b'] });
    expect(await acceptor.handle({ t: 'accept', key: 'jti/busy', ballot: [1, 'a'], value: v('x') })).toMatchObject({
      t: 'nack',
    });
  });
});
