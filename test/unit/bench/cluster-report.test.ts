/** `renderClusterMarkdown` (tools/bench/cluster-report.ts) from a plain results object: the headline table and sections. */
import { describe, expect, it } from 'vitest';
import {
  type ClusterResults,
  goalAtMost,
  type PropagationResult,
  renderClusterMarkdown,
  type RotationSample,
} from '../../../tools/bench/cluster-report.js';
import { MACHINE } from './machine-fixture.js';

function propagation(clusterSize: number, times: number[], lastNodes: string[], p99Ms: number): PropagationResult {
  return {
    clusterSize,
    rotations: times.map(
      (propagationMs, i): RotationSample => ({
        node: `node-${(i % clusterSize) + 1}`,
        use: i % 2 === 0 ? 'sig' : 'enc',
        kid: `kid-${i}`,
        rotatedAt: 1_700_000_000_000 + i * 1000,
        propagationMs,
        lastNode: lastNodes[i]!,
      }),
    ),
    medianMs: 12,
    p99Ms,
    maxMs: Math.max(...times),
    startToConvergedMs: 4_250,
    stealPercent: 1,
  };
}

function results(rest: Partial<ClusterResults['rest']> = {}): ClusterResults {
  return {
    date: '2026-01-02T03:04:05.000Z',
    durationSeconds: 321.4,
    machine: MACHINE,
    placement: 'not pinned',
    loadAverage: { start: 0.5, end: 1.25 },
    settings: { jwksMaxAgeMs: 1000, prePublishMs: 500, rotationsPerSize: 3, rotationSpacingMs: 200 },
    membership: { heartbeatIntervalMs: 500, suspectAfterMs: 1500, deadAfterMs: 3000 },
    propagation: [
      propagation(3, [12, 8, 30], ['node-2', 'node-3', 'node-2'], 30),
      propagation(5, [1500], ['node-4'], 1500),
    ],
    failureDetection: {
      clusterSize: 5,
      pollMs: 50,
      runs: [
        {
          victim: 'node-2',
          perNodeMs: { 'node-1': 3100, 'node-3': 3300, 'node-4': 3200 },
          allDeadMs: 3300,
          stealPercent: 2,
        },
      ],
      medianMs: 3300,
      maxMs: 3300,
    },
    rest: {
      clusterSize: 3,
      idleMs: 5000,
      windowMs: 10_000,
      settledMs: 30_000,
      nodes: [
        {
          name: 'node-1',
          rssKiB: 81_920,
          settledRssKiB: 71_680,
          cpuPercent: 1.25,
          sentBytesPerSecond: 1234,
          receivedBytesPerSecond: 1000,
          connections: 2,
        },
      ],
      medianRssKiB: 81_920,
      maxRssKiB: 102_400,
      medianSettledRssKiB: 71_680,
      maxSettledRssKiB: 92_160,
      trafficSkipped: undefined,
      medianSentBytesPerSecond: 1234,
      maxSentBytesPerSecond: 2000,
      socketsOpened: 0,
      socketsClosed: 1,
      stealPercent: 3,
      ...rest,
    },
    goals: {
      propagationP99Ms: goalAtMost('p99', 1000, 1500),
      killToDeadMs: goalAtMost('kill', 5000, 3300),
      rssBytes: goalAtMost('rss', 100_000_000, undefined),
    },
  };
}

describe('renderClusterMarkdown', () => {
  const text = renderClusterMarkdown(results());

  it('has one propagation row per cluster size; only the largest carries the p99 goal', () => {
    expect(text).toContain('| Rotation → new kid on every node, 3 nodes (ms, 3 rotations) | 12 | 30 | 30 | – |');
    expect(text).toContain(
      '| Rotation → new kid on every node, 5 nodes (ms, 1 rotation) | 12 | 1,500 | 1,500 | p99 ≤ 1000 ms: **not met** |',
    );
  });

  it('shows the failure-detection and memory goals with their verdicts', () => {
    expect(text).toContain(
      '| SIGKILL → `dead` on every other node, 5 nodes (ms, 1 kill) | 3,300 | – | 3,300 | ≤ 5,000 ms: met |',
    );
    // RSS early after convergence is shown; the goal is judged on RSS once the nodes have settled
    expect(text).toContain('idle 5 s after convergence (MiB) | 80.0 | – | 100.0 | – |');
    expect(text).toContain(
      'idle 30 s after convergence (MiB) | 70.0 | – | 90.0 | largest ≤ 100 MB (95.4 MiB): not measured |',
    );
    expect(text).toContain('| node-1 | 80.0 | 70.0 | 1.3% |');
  });

  it('shows the gossip traffic when it was measured', () => {
    expect(text).toContain('nodes (B/s over 10 s) | 1,234 | – | 2,000 | – |');
    expect(text).toContain('Sockets opened during the window: 0; closed (their bytes lost): 1.');
  });

  it('says why the traffic was skipped when it was', () => {
    const skipped = renderClusterMarkdown(results({ trafficSkipped: '`ss` (iproute2) was not found' }));
    expect(skipped).toContain(
      '| Gossip bytes per node per second at rest | skipped: `ss` (iproute2) was not found | – | – | – |',
    );
    expect(skipped).toContain('no traffic figures: `ss` (iproute2) was not found.');
  });

  it('names the receiver that came last most often, and lists every rotation', () => {
    expect(text).toContain('| 3 | 4.3 | 3 | 12 | 30 | 30 | node-2 (2×) | 1% |');
    expect(text).toContain('- 3 nodes: 12, 8, 30');
    expect(text).toContain('- 5 nodes: 1500');
  });

  it('lists each kill with its fastest and median node, and every node of every kill', () => {
    expect(text).toContain('| 1 | node-2 | 3,300 | 3,100 | 3,200 | 2% |');
    expect(text).toContain('Per node and kill (ms): node-2 killed: node-1 3,100, node-3 3,300, node-4 3,200.');
  });

  it('has a row per resting node', () => {
    expect(text).toContain('| node-1 | 80.0 | 70.0 | 1.3% | 1,234 | 1,000 | 2 |');
  });

  it('calls the machine quiet up to 5% steal and noisy above, naming the worst', () => {
    expect(text).toContain('Hypervisor steal stayed at or below 3% in every phase.');
    const noisy = renderClusterMarkdown(results({ stealPercent: 12 }));
    expect(noisy).toContain('**Noisy machine:** the hypervisor took up to 12% of the CPU time during a phase');
  });

  it('starts with the title and the machine line and ends with a newline', () => {
    expect(
      text.startsWith('# keymesh cluster benchmark\n\n2026-01-02T03:04:05.000Z · Test CPU @ 2.00GHz × 2 · 4.0 GiB RAM'),
    ).toBe(true);
    expect(text).toContain('· run took 321 s');
    expect(text.endsWith('\n')).toBe(true);
  });
});
