import { describe, expect, it } from 'vitest';
import { Ring } from '../../../src/cluster-map/ring.js';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `node${String(i).padStart(12, '0')}`);

describe('ring', () => {
  it('gives each key distinct replicas, the same on every node whatever the member order', () => {
    const a = new Ring(ids(5));
    const b = new Ring([...ids(5)].reverse());
    for (let i = 0; i < 200; i++) {
      const r = a.replicas(`user/${i}`, 3);
      expect(new Set(r).size).toBe(3);
      expect(b.replicas(`user/${i}`, 3)).toEqual(r);
    }
  });

  it('never returns more replicas than members, and none for an empty ring', () => {
    expect(new Ring(ids(2)).replicas('k', 3)).toHaveLength(2);
    expect(new Ring([]).replicas('k', 3)).toEqual([]);
  });

  it('moves only a small part of the keys when a member joins', () => {
    const before = new Ring(ids(5));
    const after = new Ring(ids(6));
    let moved = 0;
    const n = 2000;
    for (let i = 0; i < n; i++) if (before.replicas(`k${i}`, 1)[0] !== after.replicas(`k${i}`, 1)[0]) moved += 1;
    expect(moved / n).toBeLessThan(0.3); // ideal is 1/6
    expect(moved).toBeGreaterThan(0);
  });

  it('spreads ownership roughly evenly', () => {
    const shares = Object.values(new Ring(ids(4)).shares());
    for (const s of shares) expect(s).toBeGreaterThan(0.15);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1);
  });
});
