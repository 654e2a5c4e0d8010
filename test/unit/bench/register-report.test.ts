/**
 * The register benchmark's figures (tools/bench/register-report.ts): `summarizeRuns`, `longestGaps`, `registerGoals`
 * and the failover part of `renderRegisterMarkdown`, from plain objects.
 */
import { describe, expect, it } from 'vitest';
import {
  type FailoverResult,
  longestGaps,
  registerGoals,
  type RegisterResults,
  type RegisterRun,
  renderRegisterMarkdown,
  summarizeRuns,
} from '../../../tools/bench/register-report.js';
import { MACHINE } from './machine-fixture.js';

function run(opsPerSecond: number, p50Ms: number, p99Ms: number, failures: Record<string, number> = {}): RegisterRun {
  const failed = Object.values(failures).reduce((a, n) => a + n, 0);
  return {
    durationMs: 1000,
    completed: opsPerSecond,
    failed,
    failures,
    opsPerSecond,
    p50Ms,
    p99Ms,
    nodesCpuPercent: 150,
    loadGenCpuPercent: 60,
    stealPercent: 1,
  };
}

const FAILOVER: FailoverResult = {
  concurrency: 8,
  victim: 'node-2',
  beforeKillMs: 3000,
  afterKillMs: 5000,
  maxGapMs: 250,
  maxGapStartMs: -120,
  maxGapBeforeKillMs: 40,
  killToFirstNewSuccessMs: undefined,
  completed: 12_345,
  failed: 3,
  failures: { 'status 503': 2, ECONNRESET: 1 },
  retriesFoundOwnValue: 1,
  opsPerSecondBeforeKill: 1600,
  opsPerSecondAfterKill: 1500,
  stealPercent: 2,
};

describe('summarizeRuns', () => {
  it('reports the medians over the runs and counts every round-trip value, absent ones too', () => {
    const runs = [run(100, 1, 5), run(300, 3, 9), run(200, 2, 7)];
    const m = summarizeRuns('create', 1, runs, [1, 1, 2, undefined]);
    expect(m).toMatchObject({ op: 'create', concurrency: 1, medianOpsPerSecond: 200, medianP50Ms: 2, medianP99Ms: 7 });
    expect(m.medianRoundTrips).toBe(1);
    expect(m.roundTripCounts).toEqual({ '1': 2, '2': 1, absent: 1 });
    expect(m.runs).toBe(runs);
  });

  it('has no round-trip median when no answer reported one', () => {
    expect(summarizeRuns('read', 32, [run(1, 1, 1)], [undefined]).medianRoundTrips).toBeNaN();
  });
});

describe('longestGaps', () => {
  it('finds the longest gap, where it starts, and the longest one ending by the kill', () => {
    expect(longestGaps([0, 10, 15, 40, 45], 20)).toEqual({ ms: 25, from: 15, beforeKillMs: 10 });
  });

  it('keeps the first of two equal gaps', () => {
    expect(longestGaps([0, 30, 60], 100)).toEqual({ ms: 30, from: 0, beforeKillMs: 30 });
  });

  it('has no gap with fewer than two completions', () => {
    expect(longestGaps([], 0)).toEqual({ ms: 0, from: 0, beforeKillMs: 0 });
    expect(longestGaps([7], 0)).toEqual({ ms: 0, from: 7, beforeKillMs: 0 });
  });
});

describe('registerGoals', () => {
  it('takes latency at concurrency 1 and throughput at 32, and leaves missing ones unmeasured', () => {
    const goals = registerGoals(
      [
        summarizeRuns('create', 1, [run(500, 1.5, 3)], []),
        summarizeRuns('read', 1, [run(900, 1.2, 2)], []),
        summarizeRuns('create', 32, [run(2000, 9, 20)], []),
        summarizeRuns('read', 8, [run(9000, 1, 2)], []),
      ],
      FAILOVER,
    );
    expect(goals.createP50Ms).toMatchObject({ limit: 2, measured: 1.5, met: true });
    expect(goals.readP50Ms).toMatchObject({ limit: 1, measured: 1.2, met: false });
    expect(goals.createsPerSecond).toMatchObject({ limit: 1600, measured: 2000, met: true });
    expect(goals.readsPerSecond).toMatchObject({ measured: undefined, met: undefined });
    expect(goals.failoverGapMs).toMatchObject({ limit: 300, measured: 250, met: true });
  });
});

describe('renderRegisterMarkdown', () => {
  const measurements = [
    summarizeRuns('create', 1, [run(500, 1.5, 3, { 'status 503': 1 })], [2, 2]),
    summarizeRuns('read', 32, [run(4000, 0.5, 2)], []),
  ];
  const results: RegisterResults = {
    date: '2026-01-02T03:04:05.000Z',
    durationSeconds: 100,
    machine: MACHINE,
    placement: 'not pinned',
    loadAverage: { start: 0.1, end: 0.2 },
    settings: {
      clusterSize: 3,
      concurrencies: [1, 32],
      warmupMs: 1000,
      initialWarmupMs: 15_000,
      durationMs: 5000,
      repetitions: 1,
      valueBytes: 32,
      readKeys: 100,
      failoverConcurrency: 8,
      beforeKillMs: 3000,
      afterKillMs: 5000,
      failoverTimeoutMs: 500,
      replicationFactor: 3,
      requestTimeoutMs: 1000,
    },
    startToServingMs: 2500,
    idleNodesCpuPercent: [1, 2, 3],
    measurements,
    failover: FAILOVER,
    goals: registerGoals(measurements, FAILOVER),
  };
  const text = renderRegisterMarkdown(results);

  it('puts each goal in the row it belongs to, and "not reported" for missing round trips', () => {
    expect(text).toContain('| `PUT` getOrCreate, new key | 1 | 500 | 1.50 | 3.00 | 2 | 1 | p50 ≤ 2 ms: met |');
    expect(text).toContain(
      '| `GET` read, existing key | 32 | 4,000 | 0.50 | 2.00 | not reported | 0 | ≥ 3,500/s: met |',
    );
  });

  it('tells the failover: the gap before the kill, no new success, the failures by reason', () => {
    expect(text).toContain(
      '- Longest gap: 250 ms, starting 120 ms before the SIGKILL (longest gap before the kill: 40 ms).',
    );
    expect(text).toContain('- SIGKILL → first success of an operation started after it: none.');
    expect(text).toContain(
      '3 attempts failed (status 503 × 2, ECONNRESET × 1); 1 retries found their own value already chosen.',
    );
  });
});
