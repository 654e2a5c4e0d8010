import { describe, expect, it } from 'vitest';
import { Membership } from '../../../src/cluster/membership.js';
import {
  CREATOR_GRACE_MS,
  creatorRank,
  LeaderlessDecisions,
  passesActivationGate,
} from '../../../src/cluster/placement.js';
import { ManagementKey } from '../../../src/crypto/management-key.js';
import { Sealer } from '../../../src/crypto/sealer.js';
import { silentLogger } from '../../../src/log.js';
import { SealedStore } from '../../../src/storage/sealed-store.js';
import { makeKeyring } from '../../helpers/keyring.js';

describe('leaderless placement', () => {
  it('ranks every node once, the same way on every node', () => {
    const ids = ['00000000000000a1', '00000000000000b2', '00000000000000c3'];
    const ranks = ids.map((id) => creatorRank('keys/default/sig', ids, id));
    expect([...ranks].sort()).toEqual([0, 1, 2]);
    expect(ids.map((id) => creatorRank('keys/default/sig', [...ids].reverse(), id))).toEqual(ranks);
  });

  it('spreads ownership of different keys over the nodes', () => {
    const ids = Array.from({ length: 5 }, (_, i) => `${i}`.padStart(16, '0'));
    const owners = new Set<string>();
    for (const realm of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'])
      for (const use of ['sig', 'enc', 'secret'])
        owners.add(ids.find((id) => creatorRank(`keys/${realm}/${use}`, ids, id) === 0)!);
    expect(owners.size).toBeGreaterThan(2);
  });

  it('a lone node owns everything', () => {
    expect(creatorRank('keys/default/enc', [], '00000000000000a1')).toBe(0);
  });
});

describe('activation gate', () => {
  const m = (live: boolean, ...kids: string[]) => ({ live, kids: new Set(kids) });
  it('needs every live member', () => {
    expect(passesActivationGate('k', [m(true, 'k'), m(true, 'k'), m(true)])).toBe(false);
    expect(passesActivationGate('k', [m(true, 'k'), m(true, 'k'), m(true, 'k')])).toBe(true);
  });
  it('needs a majority of all members, dead ones counted by their last known kids', () => {
    expect(passesActivationGate('k', [m(true, 'k'), m(false), m(false)])).toBe(false);
    expect(passesActivationGate('k', [m(true, 'k'), m(false, 'k'), m(false)])).toBe(true);
    expect(passesActivationGate('k', [m(true, 'k'), m(false)])).toBe(false);
    expect(passesActivationGate('k', [m(true, 'k')])).toBe(true);
  });
  it("counts only the cluster map's members toward the majority once there is a map, and still needs every live node", () => {
    const out = (live: boolean, ...kids: string[]) => ({ ...m(live, ...kids), counted: false });
    expect(passesActivationGate('k', [m(true, 'k'), m(false, 'k'), out(false), out(false)])).toBe(true);
    expect(passesActivationGate('k', [m(true, 'k'), m(false), m(false), out(false, 'k')])).toBe(false);
    expect(passesActivationGate('k', [m(true, 'k'), m(true, 'k'), out(true)])).toBe(false);
  });
});

describe("leaderless decisions from a node's view", () => {
  it('lets the owner create at once and the next member only after the grace period', async () => {
    const ctx = await makeKeyring();
    const selfId = '00000000000000a1';
    const otherId = '00000000000000b2';
    const store = new SealedStore(ctx.memory, new Sealer(ManagementKey.parse(ManagementKey.generate(), 't'), 'node-x'));
    const membership = new Membership({
      self: { nodeId: selfId, name: 'a', httpUrl: '' },
      store,
      clock: ctx.clock,
      timing: { suspectAfterMs: 1000, deadAfterMs: 2000 },
      log: silentLogger(),
    });
    await membership.observe(
      {
        t: 'heartbeat',
        v: 1,
        from: otherId,
        name: 'b',
        httpUrl: '',
        addrs: [],
        incarnation: 1,
        digest: '',
        kidsDigest: '',
        sentAt: 0,
      },
      'peer-b',
    );
    const decisions = new LeaderlessDecisions({ membership, keyring: ctx.keyring, clock: ctx.clock, nodeId: selfId });
    const rank = creatorRank('keys/default/sig', [selfId, otherId], selfId);
    const at = ctx.clock.now() + 60_000;
    expect(decisions.mayCreate('default', 'sig', at)).toBe(rank === 0);
    ctx.clock.advance(CREATOR_GRACE_MS - 1);
    await membership.observe(
      {
        t: 'heartbeat',
        v: 1,
        from: otherId,
        name: 'b',
        httpUrl: '',
        addrs: [],
        incarnation: 1,
        digest: '',
        kidsDigest: '',
        sentAt: 0,
      },
      'peer-b',
    );
    expect(decisions.mayCreate('default', 'sig', at)).toBe(rank === 0);
    ctx.clock.advance(1);
    expect(decisions.mayCreate('default', 'sig', at)).toBe(true);
  });
});
