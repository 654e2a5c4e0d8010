import { describe, expect, it } from 'vitest';
import { Membership } from '../../../src/cluster/membership.js';
import { Penalties, MAX_STRIKES, BAN_MS } from '../../../src/cluster/penalties.js';
import { seedToMultiaddr } from '../../../src/cluster/seed-dialer.js';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { silentLogger } from '../../../src/log.js';
import { MemoryStore } from '../../../src/storage/memory-store.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';
import { FakeClock } from '../../helpers/fake-clock.js';

let sent = 0;
/** A heartbeat; each one is sent 1 ms after the previous by the sender's clock. */
const hb = (from: string, kids: string[] = []) => ({
  t: 'heartbeat' as const,
  v: 1 as const,
  from,
  name: `n-${from.slice(-1)}`,
  httpUrl: 'http://x',
  addrs: [],
  incarnation: 1,
  digest: 'd',
  kidsDigest: 'x',
  kids,
  sentAt: ++sent,
});

async function setup(memory = new MemoryStore(), mk = ManagementKey.generate()) {
  await memory.start();
  const clock = new FakeClock();
  const store = new SealedStore(memory, new Sealer(ManagementKey.parse(mk, 't'), '000000000000000a'));
  const membership = new Membership({
    self: { nodeId: '000000000000000a', name: 'self', httpUrl: '' },
    store,
    clock,
    timing: { suspectAfterMs: 1000, deadAfterMs: 2000 },
    log: silentLogger(),
  });
  await membership.load();
  return { membership, clock, memory, mk };
}

describe('membership', () => {
  it('moves a silent member from alive to suspect to dead, and back on its next heartbeat', async () => {
    const { membership, clock } = await setup();
    await membership.observe(hb('000000000000000b'), 'peer-b');
    const b = membership.all().find((m) => m.nodeId === '000000000000000b')!;
    expect(membership.state(b)).toBe('alive');
    clock.advance(1000);
    expect(membership.state(b)).toBe('suspect');
    clock.advance(1000);
    expect(membership.state(b)).toBe('dead');
    expect(membership.live().map((m) => m.nodeId)).toEqual(['000000000000000a']);
    await membership.observe({ ...hb('000000000000000b'), sentAt: 2_001 }, 'peer-b'); // the sender's clock moved on too
    expect(membership.state(b)).toBe('alive');
  });

  it('binds a member to the peer that signs its heartbeats, refuses impostors, and keeps the binding across a restart', async () => {
    const first = await setup();
    expect(await first.membership.observe(hb('000000000000000b'), 'peer-b')).toBe(true);
    // another peer claiming b, and b's peer claiming another node, change nothing
    expect(await first.membership.observe(hb('000000000000000b'), 'peer-mallory')).toBe(false);
    expect(await first.membership.observe(hb('000000000000000c'), 'peer-b')).toBe(false);
    expect(first.membership.all().map((m) => m.nodeId)).toEqual(['000000000000000a', '000000000000000b']);
    expect(first.membership.identify('peer-b')).toBe('000000000000000b');
    expect(first.membership.identify('peer-mallory')).toBeUndefined();
    expect(first.membership.impostor('000000000000000b', 'peer-mallory')).toBe(true);
    expect(first.membership.impostor('000000000000000d', 'peer-d')).toBe(false);
    await first.memory.stop();
    const second = await setup(first.memory, first.mk);
    expect(second.membership.identify('peer-b')).toBe('000000000000000b');
    expect(await second.membership.observe(hb('000000000000000b'), 'peer-mallory')).toBe(false);
  });

  it('makes a member suspect at once when its connection drops', async () => {
    const { membership } = await setup();
    await membership.observe(hb('000000000000000b'), 'peer-b');
    membership.disconnected('peer-b');
    expect(membership.state(membership.byPeer('peer-b')!)).toBe('suspect');
  });

  it('remembers members and their last kids across a restart, as dead until heard', async () => {
    const first = await setup();
    await first.membership.observe(hb('000000000000000b', ['K'.repeat(43)]), 'peer-b');
    await first.memory.stop();
    const second = await setup(first.memory, first.mk);
    const b = second.membership.all().find((m) => m.nodeId === '000000000000000b')!;
    expect(second.membership.state(b)).toBe('dead');
    expect([...b.kids]).toEqual(['K'.repeat(43)]);
  });

  it('hands heartbeats on in the order they were applied, also when an older one is slower to store', async () => {
    const { membership } = await setup();
    const heard: number[] = [];
    const older = { ...hb('000000000000000b', ['K'.repeat(43)]), generation: 2 }; // new kids: its record is written
    const newer = { ...hb('000000000000000b', ['K'.repeat(43)]), generation: 4 };
    await Promise.all([
      membership.observe(older, 'peer-b', () => heard.push(older.generation)),
      membership.observe(newer, 'peer-b', () => heard.push(newer.generation)),
      membership.observe(older, 'peer-b', () => heard.push(-1)), // late news: not fresh, not handed on
    ]);
    expect(heard).toEqual([2, 4]);
  });

  it('ignores its own heartbeats and never reports itself as anything but alive', async () => {
    const { membership, clock } = await setup();
    await membership.observe(hb('000000000000000a'), 'peer-self');
    clock.advance(10_000);
    expect(membership.all()).toHaveLength(1);
    expect(membership.state(membership.self)).toBe('alive');
  });
});

describe('penalties', () => {
  it(`bans after ${MAX_STRIKES} strikes for ${BAN_MS} ms`, () => {
    const clock = new FakeClock();
    const p = new Penalties(clock);
    for (let i = 1; i < MAX_STRIKES; i++) expect(p.strike('x')).toBe(false);
    expect(p.strike('x')).toBe(true);
    expect(p.isBanned('x')).toBe(true);
    expect(p.isBanned('y')).toBe(false);
    clock.advance(BAN_MS);
    expect(p.isBanned('x')).toBe(false);
  });
});

describe('seeds', () => {
  it('turns host:port and multiaddrs into dialable addresses', () => {
    expect(seedToMultiaddr('127.0.0.1:9701').toString()).toBe('/ip4/127.0.0.1/tcp/9701');
    expect(seedToMultiaddr('[::1]:9701').toString()).toBe('/ip6/::1/tcp/9701');
    expect(seedToMultiaddr('keymesh-1.internal:9701').toString()).toBe('/dns/keymesh-1.internal/tcp/9701');
    expect(seedToMultiaddr('/ip4/10.0.0.1/tcp/9701').toString()).toBe('/ip4/10.0.0.1/tcp/9701');
  });
});

describe('heartbeat freshness', () => {
  it('orders heartbeats by sequence: a sender whose clock steps 3 s back or forth stays alive, and an old one revives nobody', async () => {
    const { membership, clock } = await setup();
    const beat = (seq: number, sentAt: number) => ({ ...hb('000000000000000b'), seq, sentAt });
    let senderClock = 50_000;
    await membership.observe(beat(1, senderClock), 'peer-b');
    const b = membership.all().find((m) => m.nodeId === '000000000000000b')!;
    for (let seq = 2; seq <= 12; seq++) {
      clock.advance(500);
      senderClock += 500;
      if (seq === 5) senderClock -= 3_000; // the sender's clock steps back
      if (seq === 9) senderClock += 3_000; // and forward again
      expect(await membership.observe(beat(seq, senderClock), 'peer-b')).toBe(true);
      expect(membership.state(b)).toBe('alive');
    }
    // a late copy of an old heartbeat changes nothing, whatever its clock says
    expect(await membership.observe(beat(3, senderClock + 10_000), 'peer-b')).toBe(false);
    clock.advance(2_000);
    expect(membership.state(b)).toBe('dead');
    expect(await membership.observe(beat(4, senderClock + 20_000), 'peer-b')).toBe(false);
    expect(membership.state(b)).toBe('dead');
  });

  it('credits a heartbeat that arrives late with when it was sent, so a dead member stays dead', async () => {
    const { membership, clock } = await setup();
    const beat = (sentAt: number) => ({ ...hb('000000000000000b'), sentAt });
    sent = 0;
    // the sender's clock runs 5 s behind ours; heartbeats normally take 10 ms
    await membership.observe(beat(clock.now() - 5_010), 'peer-b');
    const b = membership.all().find((m) => m.nodeId === '000000000000000b')!;
    const lastSent = clock.now() - 5_010;
    clock.advance(2_500);
    expect(membership.state(b)).toBe('dead');
    // an old heartbeat recovered late by gossip does not revive it
    await membership.observe(beat(lastSent - 100), 'peer-b');
    expect(membership.state(b)).toBe('dead');
    // a fresh one does
    await membership.observe(beat(clock.now() - 5_010), 'peer-b');
    expect(membership.state(b)).toBe('alive');
  });
});
