/**
 * Repair sends what replicas lack, not everything the node holds: a full pass once per start or map change,
 * then only what did not arrive, and only to replicas that are live.
 */
import { describe, expect, it } from 'vitest';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { SealedAcceptorStore } from '../../../src/register/acceptor-store.js';
import { withExpiry } from '../../../src/register/expiring.js';
import { FakeClock } from '../../helpers/fake-clock.js';
import type { Placement } from '../../../src/cluster-map/cluster-map.js';
import type { RegisterTransport } from '../../../src/register/proposer.js';
import { Repair } from '../../../src/register/repair.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';

const KEYS = 50;

async function setup() {
  const memory = new MemoryStore();
  await memory.start();
  const store = new SealedAcceptorStore(
    new SealedStore(memory, new Sealer(ManagementKey.parse(ManagementKey.generate(), 't'), 'a')),
  );
  await store.index();
  for (let i = 0; i < KEYS; i++) await store.save(`kv/${i}`, { promised: [1, 'a'], committed: new Uint8Array([i]) });
  const sent: string[] = [];
  const failing = new Set<string>();
  const transport: RegisterTransport = {
    request: async (to, request) => {
      sent.push(`${to}:${request.key}`);
      if (failing.has(to)) throw new Error('no answer');
      return { t: 'ack' };
    },
  };
  // every key on all three nodes
  const placement = { replicaSets: () => [['a', 'b', 'c']] } as unknown as Placement;
  const repair = new Repair({ nodeId: 'a', acceptorStore: store });
  const pass = (live: string[]) =>
    repair.pass({ placement, live: new Set(live), transport, keys: store.keys(), current: () => true });
  return { sent, failing, pass, repair };
}

describe('register repair', () => {
  it('copies every value once, and to a replica that was down only what it lacks once it is back', async () => {
    const { sent, pass } = await setup();
    await pass(['b']);
    expect(sent).toHaveLength(KEYS);
    expect(sent.every((s) => s.startsWith('b:'))).toBe(true);
    sent.length = 0;
    // c still down: nothing is sent again, to anybody
    await pass(['b']);
    await pass(['b']);
    expect(sent).toHaveLength(0);
    await pass(['b', 'c']);
    expect(sent).toHaveLength(KEYS);
    expect(sent.every((s) => s.startsWith('c:'))).toBe(true);
    sent.length = 0;
    await pass(['b', 'c']);
    expect(sent).toHaveLength(0);
  });

  it('sends again what did not arrive, to that replica alone, until it does', async () => {
    const { sent, failing, pass } = await setup();
    failing.add('c');
    await pass(['b', 'c']);
    expect(sent).toHaveLength(2 * KEYS);
    sent.length = 0;
    await pass(['b', 'c']);
    expect(sent).toHaveLength(KEYS);
    expect(sent.every((s) => s.startsWith('c:'))).toBe(true);
    failing.clear();
    sent.length = 0;
    await pass(['b', 'c']);
    expect(sent).toHaveLength(KEYS);
    sent.length = 0;
    await pass(['b', 'c']);
    expect(sent).toHaveLength(0);
  });

  it('copies no expired record', async () => {
    const memory = new MemoryStore();
    await memory.start();
    const clock = new FakeClock();
    const store = new SealedAcceptorStore(
      new SealedStore(memory, new Sealer(ManagementKey.parse(ManagementKey.generate(), 't'), 'a')),
      { clock, expiryGraceMs: 1_000 },
    );
    await store.index();
    const nowS = Math.floor(clock.now() / 1000);
    await store.save('jti/old', { promised: [1, 'a'], committed: withExpiry(nowS - 60, new Uint8Array([1])) });
    await store.save('jti/live', { promised: [1, 'a'], committed: withExpiry(nowS + 60, new Uint8Array([2])) });
    const sent: string[] = [];
    const transport: RegisterTransport = {
      request: async (to, request) => (sent.push(`${to}:${request.key}`), { t: 'ack' }),
    };
    const placement = { replicaSets: () => [['a', 'b']] } as unknown as Placement;
    await new Repair({ nodeId: 'a', acceptorStore: store }).pass({
      placement,
      live: new Set(['b']),
      transport,
      keys: store.keys(),
      current: () => true,
    });
    expect(sent).toEqual(['b:jti/live']);
  });

  it('resends an undelivered commit marker only to the replica that missed it, and a full pass after a map change', async () => {
    const { sent, pass, repair } = await setup();
    await pass(['b', 'c']);
    sent.length = 0;
    repair.noteUndelivered('kv/7', 'c', new Uint8Array([7]));
    await pass(['b', 'c']);
    expect(sent).toEqual(['c:kv/7']);
    sent.length = 0;
    repair.placementChanged();
    await pass(['b', 'c']);
    expect(sent).toHaveLength(2 * KEYS);
  });
});
