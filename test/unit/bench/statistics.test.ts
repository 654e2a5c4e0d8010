/**
 * The benchmark's statistics: `median` (tools/bench/report.ts), nearest-rank `percentile` and `goalAtMost`
 * (tools/bench/cluster-report.ts), `goalAtLeast` (tools/bench/register-report.ts). No cluster.
 */
import { describe, expect, it } from 'vitest';
import { goalAtMost, percentile } from '../../../tools/bench/cluster-report.js';
import { goalAtLeast } from '../../../tools/bench/register-report.js';
import { median } from '../../../tools/bench/report.js';

const ONE_TO_TEN = [7, 3, 10, 1, 5, 9, 2, 8, 6, 4];

describe('median', () => {
  it('is the middle value of an odd count, whatever the order', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([42])).toBe(42);
  });

  it('is the mean of the two middle values of an even count', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median(ONE_TO_TEN)).toBe(5.5);
  });

  it('sorts numerically, not as text', () => {
    expect(median([100, 9, 20])).toBe(20);
  });

  it('leaves its input as it was', () => {
    const values = [3, 1, 2];
    median(values);
    expect(values).toEqual([3, 1, 2]);
  });

  it('refuses an empty list', () => {
    expect(() => median([])).toThrow('median of nothing');
  });
});

describe('percentile (nearest rank)', () => {
  it('is the smallest value with at least p% of the values at or below it', () => {
    expect(percentile(ONE_TO_TEN, 50)).toBe(5);
    expect(percentile(ONE_TO_TEN, 90)).toBe(9);
    expect(percentile(ONE_TO_TEN, 91)).toBe(10);
  });

  it('p99 of fewer than 100 values is the largest', () => {
    expect(percentile(ONE_TO_TEN, 99)).toBe(10);
    expect(percentile([5, 1, 3], 99)).toBe(5);
  });

  it('p0 is the smallest value and p100 the largest', () => {
    expect(percentile(ONE_TO_TEN, 0)).toBe(1);
    expect(percentile(ONE_TO_TEN, 100)).toBe(10);
  });

  it('returns a value of the list, never an interpolation', () => {
    expect(percentile([10, 20], 50)).toBe(10);
    expect(percentile([10, 20], 51)).toBe(20);
  });

  it('gives the exact rank for every whole percentile of 1..100 (no rounding past it)', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    for (let p = 1; p <= 100; p++) expect(percentile(values, p)).toBe(p);
  });

  it('p99 of 1..1000 is 990', () => {
    const values = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    expect(percentile(values, 99)).toBe(990);
  });

  it('leaves its input as it was and refuses an empty list', () => {
    const values = [3, 1, 2];
    percentile(values, 50);
    expect(values).toEqual([3, 1, 2]);
    expect(() => percentile([], 50)).toThrow('percentile of nothing');
  });
});

describe('goals', () => {
  it('goalAtMost is met at or below the limit, not above, and unknown when not measured', () => {
    expect(goalAtMost('p99 (ms)', 100, 99)).toEqual({ what: 'p99 (ms)', limit: 100, measured: 99, met: true });
    expect(goalAtMost('p99 (ms)', 100, 100).met).toBe(true);
    expect(goalAtMost('p99 (ms)', 100, 100.5).met).toBe(false);
    expect(goalAtMost('p99 (ms)', 100, undefined)).toEqual({
      what: 'p99 (ms)',
      limit: 100,
      measured: undefined,
      met: undefined,
    });
  });

  it('goalAtLeast is met at or above the limit, not below, and unknown when not measured', () => {
    expect(goalAtLeast('ops/s', 1600, 1600).met).toBe(true);
    expect(goalAtLeast('ops/s', 1600, 2000).met).toBe(true);
    expect(goalAtLeast('ops/s', 1600, 1599).met).toBe(false);
    expect(goalAtLeast('ops/s', 1600, undefined).met).toBeUndefined();
  });
});
