import { describe, expect, it } from 'vitest';
import { creatorRank, passesActivationGate } from '../../../src/cluster/placement.js';

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
    for (const realm of ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']) for (const use of ['sig', 'enc', 'secret']) owners.add(ids.find((id) => creatorRank(`keys/${realm}/${use}`, ids, id) === 0)!);
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
});
