/**
 * Re-sealing at rest: after the sealing epoch changed, passes seal every stored value again, including the
 * register values sealed inside acceptor records, never put back an older state, and end with a pass that proves
 * nothing is left under the old epoch.
 */
import { describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { openRegisterValue, sealRegisterValue } from '../../../src/crypto/register-seal.js';
import { readSealHeader, Sealer } from '../../../src/crypto/sealer.js';
import { silentLogger } from '../../../src/log.js';
import { Resealer } from '../../../src/management-key/reseal.js';
import { SealedAcceptorStore } from '../../../src/register/acceptor-store.js';
import { withExpiry, withoutExpiry } from '../../../src/register/expiring.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';
import { FakeClock } from '../../helpers/fake-clock.js';

const one = ManagementKey.parse(ManagementKey.generate(), 't');
const two = ManagementKey.parse(ManagementKey.generate(2), 't');
const ballot = (n: number): [number, string] => [n, 'node-a'];

async function setup() {
  const memory = new MemoryStore();
  await memory.start();
  const sealer = new Sealer(one, 'node-a');
  const store = new SealedStore(memory, sealer);
  const clock = new FakeClock();
  const acceptors = new SealedAcceptorStore(store, { clock, expiryGraceMs: 1_000 });
  await acceptors.index();
  const resealer = new Resealer({ store, acceptorStore: acceptors, sealer, log: silentLogger() });
  const expiry = Math.floor(clock.now() / 1000) + 3_600;
  const secret = sealRegisterValue(sealer, 'secret/iss/alice', Buffer.from('alice-secret'));
  const token = withExpiry(expiry, sealRegisterValue(sealer, 'token/t1', Buffer.from('token-entry')));
  await acceptors.save('secret/iss/alice', {
    promised: ballot(1),
    accepted: { ballot: ballot(1), value: secret },
    committed: secret,
  });
  await acceptors.save('token/t1', { promised: ballot(2), accepted: { ballot: ballot(1), value: token } });
  await acceptors.save('kv/plain', { promised: ballot(1), committed: Buffer.from('plain') });
  await store.put('key/k1', Buffer.from('a key record'));
  return { memory, sealer, store, acceptors, resealer, expiry };
}

/** Every epoch found in the store: the outer seal of every value and the inner seal of every register value. */
async function epochsAtRest(memory: MemoryStore, acceptors: SealedAcceptorStore): Promise<Set<number>> {
  const found = new Set<number>();
  for await (const [key, raw] of memory.entries('')) {
    found.add(readSealHeader(raw, key).epoch);
    if (!key.startsWith('reg/')) continue;
    const state = await acceptors.load(key.slice(4));
    for (const value of [state?.committed, state?.accepted?.value]) {
      if (!value) continue;
      try {
        found.add(readSealHeader(withoutExpiry(value)).epoch);
      } catch {
        // not a sealed register value (kv/plain)
      }
    }
  }
  return found;
}

describe('re-sealing after a management-key rotation', () => {
  it('seals every value again under the new epoch, inner register values included, and everything still opens once the old key is gone', async () => {
    const { memory, sealer, store, acceptors, resealer, expiry } = await setup();
    expect(await epochsAtRest(memory, acceptors)).toEqual(new Set([1]));
    sealer.add(two);
    sealer.use(2);
    await resealer.start();
    expect(resealer.progress).toMatchObject({ state: 'done', remaining: 0 });
    expect(resealer.progress.passes).toBeGreaterThanOrEqual(2);
    expect(await epochsAtRest(memory, acceptors)).toEqual(new Set([2]));

    sealer.remove(1);
    const fresh = new SealedAcceptorStore(store);
    const secret = (await fresh.load('secret/iss/alice'))!;
    expect(openRegisterValue(sealer, 'secret/iss/alice', secret.committed!, () => false).toString()).toBe(
      'alice-secret',
    );
    const token = (await fresh.load('token/t1'))!;
    expect(openRegisterValue(sealer, 'token/t1', withoutExpiry(token.accepted!.value), () => false).toString()).toBe(
      'token-entry',
    );
    expect(token.accepted!.ballot).toEqual(ballot(1));
    expect(token.promised).toEqual(ballot(2));
    expect(
      Buffer.from(token.accepted!.value.subarray(0, 10)).equals(Buffer.from(withExpiry(expiry, new Uint8Array(0)))),
    ).toBe(true);
    expect(Buffer.from((await fresh.load('kv/plain'))!.committed!).toString()).toBe('plain');
    expect((await store.get('key/k1'))!.toString()).toBe('a key record');
  });

  it('leaves a record alone while a save of it is on its way, so the newer state wins, and a later pass seals it', async () => {
    const { sealer, acceptors, resealer } = await setup();
    sealer.add(two);
    sealer.use(2);
    const newer = { promised: ballot(9), accepted: { ballot: ballot(9), value: Buffer.from('newer') } };
    const resealing = acceptors.reseal('kv/plain', true, () => undefined);
    const saving = acceptors.save('kv/plain', newer);
    expect(await resealing).toBe('busy');
    await saving;
    expect(await acceptors.load('kv/plain')).toMatchObject({ promised: ballot(9) });
    await resealer.start();
    expect(resealer.progress).toMatchObject({ state: 'done', remaining: 0 });
    // and a fresh pass after it finds nothing more to seal
    expect(await resealer.verify()).toEqual({ resealed: 0, remaining: 0 });
    expect(await acceptors.load('kv/plain')).toMatchObject({ promised: ballot(9), accepted: { ballot: ballot(9) } });
  });

  it('never writes back an older value of a plain record over a newer one', async () => {
    const { sealer, store } = await setup();
    sealer.add(two);
    sealer.use(2);
    const resealed = store.reseal('key/k1');
    const written = store.put('key/k1', Buffer.from('newer record'));
    await Promise.all([resealed, written]);
    expect((await store.get('key/k1'))!.toString()).toBe('newer record');
  });

  it('stops between two records when the node stops, and the next start seals the rest', async () => {
    const { memory, sealer, acceptors, resealer } = await setup();
    sealer.add(two);
    sealer.use(2);
    const running = resealer.start();
    await resealer.stop();
    await running;
    const again = new Resealer({
      store: new SealedStore(memory, sealer),
      acceptorStore: acceptors,
      sealer,
      log: silentLogger(),
    });
    await again.start();
    expect(await epochsAtRest(memory, acceptors)).toEqual(new Set([2]));
  });

  it('counts a value under a key this node neither holds nor removed as left to do, never as done', async () => {
    const { sealer, acceptors, store } = await setup();
    const stranger = ManagementKey.parse(ManagementKey.generate(3), 't');
    const handed = sealRegisterValue(new Sealer(stranger, 'node-peer'), 'secret/iss/bob', Buffer.from('bob'));
    await acceptors.save('secret/iss/bob', { promised: ballot(1), committed: handed });
    const removedHere: number[] = [];
    const resealer = new Resealer({
      store,
      acceptorStore: acceptors,
      sealer,
      log: silentLogger(),
      removed: () => removedHere,
    });
    expect((await resealer.pass()).remaining).toBe(1);
    // once epoch 3 is known removed here, the value is lost rather than pending: it holds nothing up
    removedHere.push(3);
    expect(await resealer.pass()).toEqual({ resealed: 0, remaining: 0 });
  });
});
