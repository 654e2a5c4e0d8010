/**
 * Hedged forwarding and direct reachability: one silent replica costs the hedge delay, not a request timeout; a
 * replica that answered with an error has the last word; a replica whose requests vanish is asked last.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { hedged } from '../../../src/replication/hedged.js';
import { Reachability } from '../../../src/replication/reachability.js';
import { FakeClock } from '../../helpers/fake-clock.js';

class Unreachable extends Error {}

const never = () => new Promise<string>(() => undefined);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function run(attempts: Record<string, () => Promise<string>>, asked: string[]) {
  return hedged({
    candidates: Object.keys(attempts),
    hedgeAfterMs: 100,
    attempt: (to) => {
      asked.push(to);
      return attempts[to]!();
    },
    isFinal: (err) => !(err instanceof Unreachable),
    exhausted: (failures) => new Error(`all ${failures.length} failed`),
  });
}

describe('a hedged request', () => {
  it('asks only the first candidate when it answers in time', async () => {
    const asked: string[] = [];
    const result = run({ a: async () => 'from a', b: async () => 'from b' }, asked);
    await expect(result).resolves.toBe('from a');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(asked).toEqual(['a']);
  });

  it('asks the next one after the hedge delay when the first is silent, and takes its answer', async () => {
    const asked: string[] = [];
    const result = run({ a: never, b: async () => 'from b', c: async () => 'from c' }, asked);
    await vi.advanceTimersByTimeAsync(99);
    expect(asked).toEqual(['a']);
    await vi.advanceTimersByTimeAsync(1);
    await expect(result).resolves.toBe('from b');
    expect(asked).toEqual(['a', 'b']);
  });

  it('names each candidate still silent after the hedge delay, and no candidate that answered', async () => {
    const slow: string[] = [];
    const result = hedged({
      candidates: ['a', 'b', 'c'],
      hedgeAfterMs: 100,
      onSlow: (to) => slow.push(to),
      attempt: (to) => (to === 'c' ? new Promise<string>((r) => setTimeout(() => r('from c'), 50)) : never()),
      isFinal: () => true,
      exhausted: () => new Error('none'),
    });
    await vi.advanceTimersByTimeAsync(250);
    await expect(result).resolves.toBe('from c');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(slow).toEqual(['a', 'b']);
  });

  it('moves on at once when a candidate cannot be reached', async () => {
    const asked: string[] = [];
    const result = run({ a: () => Promise.reject(new Unreachable()), b: async () => 'from b' }, asked);
    await vi.advanceTimersByTimeAsync(0);
    await expect(result).resolves.toBe('from b');
    expect(asked).toEqual(['a', 'b']);
  });

  it('ends with the error of a candidate that answered with one, without asking further', async () => {
    const asked: string[] = [];
    const result = run({ a: () => Promise.reject(new Error('no majority')), b: async () => 'from b' }, asked);
    await expect(result).rejects.toThrow('no majority');
    await vi.advanceTimersByTimeAsync(1_000);
    expect(asked).toEqual(['a']);
  });

  it('fails with the exhausted error once every candidate failed, and only then', async () => {
    const asked: string[] = [];
    let failLast!: () => void;
    const result = run(
      {
        a: () => Promise.reject(new Unreachable()),
        b: () =>
          new Promise((_, reject) => {
            failLast = () => reject(new Unreachable());
          }),
      },
      asked,
    );
    let settled = false;
    void result
      .catch(() => undefined)
      .finally(() => {
        settled = true;
      });
    await vi.advanceTimersByTimeAsync(500);
    expect(settled).toBe(false);
    failLast();
    await expect(result).rejects.toThrow('all 2 failed');
  });
});

describe('direct reachability', () => {
  it('asks nodes that answer first, then unanswering ones, then those not alive, and forgives after a while', () => {
    const clock = new FakeClock();
    const reach = new Reachability({ clock, retryAfterMs: 5_000 });
    const alive = new Set(['a', 'b', 'c']);
    expect(reach.order(['d', 'a', 'b', 'c'], alive)).toEqual(['a', 'b', 'c', 'd']);
    reach.unanswered('a');
    expect(reach.order(['d', 'a', 'b', 'c'], alive)).toEqual(['b', 'c', 'a', 'd']);
    reach.answered('a');
    expect(reach.isUnanswering('a')).toBe(false);
    reach.unanswered('b');
    clock.advance(5_000);
    expect(reach.order(['a', 'b', 'c'], alive)).toEqual(['a', 'b', 'c']);
  });
});
