/**
 * The Serf beside the cluster benchmark, without Serf: the agent flags, version, `serf members` and monitor-line
 * parsing (tools/bench/serf-cluster.ts, tools/bench/serf-anchor.ts), the per-event samples and the victims, and the
 * ratios, goals and Markdown (tools/bench/serf-report.ts) from a fixed results object, also inside the cluster
 * benchmark's summary, old results without Serf included.
 */
import { describe, expect, it } from 'vitest';
import {
  type ClusterResults,
  type FailureDetectionResult,
  goalAtMost,
  type PropagationResult,
  renderClusterMarkdown,
} from '../../../tools/bench/cluster-report.js';
import { eventSample, parseEventLine, parseFailedLine, serfVictims } from '../../../tools/bench/serf-anchor.js';
import { agentArgs, parseMembers, parseSerfVersion } from '../../../tools/bench/serf-cluster.js';
import {
  renderSerfSection,
  type SerfAnchorMeasured,
  serfComparisonRows,
  serfGoalRows,
  serfGoals,
} from '../../../tools/bench/serf-report.js';
import { MACHINE } from './machine-fixture.js';

const PORTS = [
  { bind: 7001, rpc: 8001 },
  { bind: 7002, rpc: 8002 },
];

describe('the serf agents', () => {
  it('binds each agent and its RPC to loopback, logs errors only, and joins every later agent to the first', () => {
    expect(agentArgs(0, PORTS)).toEqual([
      'agent',
      '-node',
      'serf-1',
      '-bind=127.0.0.1:7001',
      '-rpc-addr=127.0.0.1:8001',
      '-log-level=err',
    ]);
    expect(agentArgs(1, PORTS)).toEqual([
      'agent',
      '-node',
      'serf-2',
      '-bind=127.0.0.1:7002',
      '-rpc-addr=127.0.0.1:8002',
      '-log-level=err',
      '-join=127.0.0.1:7001',
    ]);
  });

  it("reads the version from `serf version`, with or without the 'Serf v' prefix", () => {
    expect(parseSerfVersion('0.8.2-dev\nAgent Protocol: 5 (Understands back to: 2)\n')).toBe('0.8.2-dev');
    expect(parseSerfVersion('Serf v0.10.1\nAgent Protocol: 5 (Understands back to: 2)\n')).toBe('0.10.1');
    expect(parseSerfVersion('command not found')).toBeUndefined();
  });

  it('reads names and statuses from `serf members -format=json`', () => {
    const output = JSON.stringify({
      members: [
        { name: 'serf-1', addr: '127.0.0.1:7001', port: 7001, tags: {}, status: 'alive', protocol: { version: 5 } },
        { name: 'serf-2', addr: '127.0.0.1:7002', port: 7002, tags: {}, status: 'failed', protocol: { version: 5 } },
      ],
    });
    expect(parseMembers(output)).toEqual([
      { name: 'serf-1', status: 'alive' },
      { name: 'serf-2', status: 'failed' },
    ]);
  });

  it('refuses `serf members` output that is not the JSON member list', () => {
    expect(() => parseMembers('serf-1  127.0.0.1:7001  alive')).toThrow();
    expect(() => parseMembers('{"error":"x"}')).toThrow(/no members list/);
    expect(() => parseMembers('{"members":[{"name":"serf-1"}]}')).toThrow(/without name or status/);
  });
});

describe('the monitor lines', () => {
  it('finds the user event an agent received, once per event, and nothing else', () => {
    expect(parseEventLine('2026/12/05 20:39:47 [INFO] agent: Received event: user-event: rotation-3')).toBe(
      'rotation-3',
    );
    expect(parseEventLine('2026/12/05 20:39:46 [INFO] agent: Received event: member-join')).toBeUndefined();
    expect(parseEventLine('2026/12/05 20:39:46 [DEBUG] serf: messageUserEventType: rotation-3')).toBeUndefined();
  });

  it('finds the member an agent marked failed', () => {
    expect(parseFailedLine('2026/12/05 20:42:10 [INFO] serf: EventMemberFailed: serf-10 127.0.0.1')).toBe('serf-10');
    expect(parseFailedLine('2026/12/05 20:42:10 [INFO] serf: EventMemberJoin: serf-10 127.0.0.1')).toBeUndefined();
  });
});

describe('the measurements', () => {
  it('times an event from the sender having it to the last other agent, and the CLI apart', () => {
    const seen = new Map([
      [0, 1_000],
      [1, 1_050],
      [2, 1_320],
      [3, 1_200],
    ]);
    expect(eventSample('rotation-1', 0, 980, seen, 4)).toEqual({
      name: 'rotation-1',
      sender: 'serf-1',
      sendMs: 20,
      propagationMs: 320,
      lastAgent: 'serf-3',
    });
  });

  it('names the agents that have not seen an event yet', () => {
    expect(eventSample('rotation-1', 0, 0, new Map([[0, 5]]), 3)).toEqual(['serf-2', 'serf-3']);
  });

  it('kills different agents, never the first, spread from the last one down', () => {
    expect(serfVictims(10, 3)).toEqual([9, 6, 3]);
    expect(() => serfVictims(3, 3)).toThrow(/cannot kill 3/);
  });
});

const KEYMESH_PROPAGATION: PropagationResult = {
  clusterSize: 10,
  rotations: [],
  medianMs: 30,
  p99Ms: 80,
  maxMs: 90,
  startToConvergedMs: 4_000,
  stealPercent: 0,
};
const KEYMESH_FAILURES: FailureDetectionResult = {
  clusterSize: 10,
  pollMs: 50,
  runs: [{ victim: 'node-10', perNodeMs: { 'node-1': 2_400 }, allDeadMs: 2_500, stealPercent: 0 }],
  medianMs: 2_500,
  maxMs: 2_700,
};
const KEYMESH = { propagation: KEYMESH_PROPAGATION, failureDetection: KEYMESH_FAILURES };

function serfResults(events = { medianMs: 320, p99Ms: 470, maxMs: 470 }, failedMedianMs = 5_400): SerfAnchorMeasured {
  const failureDetection = {
    runs: [
      { victim: 'serf-10', perNodeMs: { 'serf-1': 6_000 }, allDeadMs: 6_069, stealPercent: 0 },
      { victim: 'serf-7', perNodeMs: { 'serf-1': 5_000 }, allDeadMs: failedMedianMs, stealPercent: 0 },
    ],
    medianMs: failedMedianMs,
    maxMs: 6_069,
  };
  const e = {
    spacingMs: 300,
    samples: [
      { name: 'rotation-1', sender: 'serf-1', sendMs: 21, propagationMs: 320, lastAgent: 'serf-4' },
      { name: 'rotation-2', sender: 'serf-2', sendMs: 19, propagationMs: 470, lastAgent: 'serf-9' },
    ],
    ...events,
    stealPercent: 1,
  };
  return {
    measured: true,
    version: '0.8.2-dev (Debian serf 0.9.4~ds1-1+b13)',
    agents: 10,
    profile: 'lan',
    startToJoinedMs: 2_100,
    events: e,
    failureDetection,
    goals: serfGoals(KEYMESH, { events: e, failureDetection }),
  };
}

describe('the goals relative to Serf', () => {
  it("compares keymesh's p99 with Serf's median, and keymesh's median kill → dead with half Serf's", () => {
    const goals = serfResults().goals;
    expect(goals.propagationP99VsSerfMedian).toMatchObject({ limit: 1, measured: 80 / 320, met: true });
    expect(goals.killToDeadRatio).toMatchObject({ limit: 0.5, measured: 2_500 / 5_400, met: true });
  });

  it('fails a goal keymesh misses, and judges none without a Serf figure', () => {
    const slowKeymesh = serfGoals(
      {
        propagation: { ...KEYMESH_PROPAGATION, p99Ms: 400 },
        failureDetection: { ...KEYMESH_FAILURES, medianMs: 3_000 },
      },
      { events: serfResults().events, failureDetection: { medianMs: 5_400 } },
    );
    expect(slowKeymesh.propagationP99VsSerfMedian.met).toBe(false);
    expect(slowKeymesh.killToDeadRatio.met).toBe(false);
    const noSerf = serfGoals(KEYMESH, {
      events: { ...serfResults().events, medianMs: 0 },
      failureDetection: { medianMs: 0 },
    });
    expect(noSerf.propagationP99VsSerfMedian).toMatchObject({ measured: undefined, met: undefined });
  });

  it("puts keymesh's figure, Serf's and the ratio in each row", () => {
    const rows = serfComparisonRows(KEYMESH, serfResults());
    expect(rows).toContain('| Rotation / user event → every node, 10 nodes: median | 30 | 320 | 0.09× |');
    expect(rows).toContain('| … p99 | 80 | 470 | 0.17× |');
    expect(rows).toContain('| SIGKILL → dead / failed on every other node, 10 nodes: median | 2,500 | 5,400 | 0.46× |');
    expect(rows).toContain('| … max | 2,700 | 6,069 | 0.44× |');
  });

  it('gives each goal its ratio, limit and verdict', () => {
    expect(serfGoalRows(serfResults().goals)).toEqual([
      '| Goal (keymesh ÷ Serf) | keymesh ÷ Serf | Limit | Verdict |',
      '|---|---:|---|---|',
      "| rotation propagation p99 at 10 nodes ÷ Serf's median user-event propagation | 0.25× | ≤ 1.0× | met |",
      "| median SIGKILL → dead on every node ÷ Serf's median SIGKILL → failed | 0.46× | ≤ 0.5× | met |",
    ]);
  });
});

describe('renderSerfSection', () => {
  it('names the version, lists every event and kill, and shows the rows', () => {
    const text = renderSerfSection(serfResults(), KEYMESH).join('\n');
    expect(text).toContain('## Beside HashiCorp Serf');
    expect(text).toContain('Serf 0.8.2-dev (Debian serf 0.9.4~ds1-1+b13), 10 agents on loopback');
    expect(text).toContain('Serf per event (ms, in the order sent): 320, 470.');
    expect(text).toContain('Serf SIGKILL → failed on every other agent (ms): serf-10 6,069, serf-7 5,400.');
    expect(text).toContain('| … p99 | 80 | 470 | 0.17× |');
  });

  it('says why Serf was not measured, or that the results predate it', () => {
    expect(renderSerfSection({ measured: false, reason: 'no apt-get' }, KEYMESH).join('\n')).toContain(
      'Serf was not measured: no apt-get. No goal relative to Serf is judged.',
    );
    expect(renderSerfSection(undefined, KEYMESH).join('\n')).toContain('No Serf figures in these results');
  });
});

describe('the cluster summary', () => {
  const base: ClusterResults = {
    date: '2026-01-02T03:04:05.000Z',
    durationSeconds: 100,
    machine: MACHINE,
    placement: 'not pinned',
    loadAverage: { start: 0.5, end: 1 },
    settings: { jwksMaxAgeMs: 1000, prePublishMs: 2000, rotationsPerSize: 1, rotationSpacingMs: 300 },
    membership: { heartbeatIntervalMs: 500, suspectAfterMs: 1500, deadAfterMs: 3000 },
    propagation: [
      {
        ...KEYMESH_PROPAGATION,
        rotations: [{ node: 'node-1', use: 'sig', kid: 'k', rotatedAt: 0, propagationMs: 30, lastNode: 'node-2' }],
      },
    ],
    failureDetection: KEYMESH_FAILURES,
    rest: {
      clusterSize: 10,
      idleMs: 5000,
      windowMs: 10_000,
      settledMs: 30_000,
      nodes: [],
      medianRssKiB: 1,
      maxRssKiB: 1,
      medianSettledRssKiB: 1,
      maxSettledRssKiB: 1,
      trafficSkipped: 'no ss',
      medianSentBytesPerSecond: undefined,
      maxSentBytesPerSecond: undefined,
      socketsOpened: undefined,
      socketsClosed: undefined,
      stealPercent: 0,
    },
    goals: {
      propagationP99Ms: goalAtMost('p99', 100, 80),
      killToDeadMs: goalAtMost('kill', 3000, 2700),
      rssBytes: goalAtMost('rss', 100_000_000, 1024),
    },
  };

  it("ends with the Serf section, compared with the largest cluster's figures", () => {
    const text = renderClusterMarkdown({ ...base, serf: serfResults() });
    expect(text).toContain('## Beside HashiCorp Serf');
    expect(text).toContain('| Rotation / user event → every node, 10 nodes: median | 30 | 320 | 0.09× |');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('still renders results recorded before Serf was measured', () => {
    const old = JSON.parse(JSON.stringify(base)) as ClusterResults;
    expect(renderClusterMarkdown(old)).toContain('No Serf figures in these results');
  });
});
