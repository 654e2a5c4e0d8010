/**
 * The Serf beside the cluster benchmark, in its results (the optional `serf` field of the cluster part, absent from
 * results recorded before it was measured) and in its Markdown: keymesh's and Serf's figures side by side, the ratios
 * keymesh ÷ Serf, and issue 19's goals relative to Serf (rotation propagation p99 at 10 nodes at most Serf's median
 * user-event propagation; SIGKILL → dead on every node at most half Serf's SIGKILL → failed).
 */
import type { FailureDetectionResult, FailureDetectionRun, Goal, PropagationResult } from './cluster-report.js';
import { median } from './report.js';

/** One user event: when each agent logged it, relative to the sending agent. */
export interface SerfEventSample {
  readonly name: string;
  /** The agent that sent it (`serf event` through its RPC address). */
  readonly sender: string;
  /** Spawning `serf event` → the sender's own `Received event` line (the CLI's start-up and the RPC call), ms. */
  readonly sendMs: number;
  /** The sender's `Received event` line → the last other agent's, ms. */
  readonly propagationMs: number;
  readonly lastAgent: string;
}

/** User-event propagation over every agent. */
export interface SerfEventsResult {
  readonly spacingMs: number;
  readonly samples: SerfEventSample[];
  readonly medianMs: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly stealPercent: number;
}

/** Serf measured beside the cluster benchmark. */
export interface SerfAnchorMeasured {
  readonly measured: true;
  /** What `serf version` says, with the Debian package version when known. */
  readonly version: string;
  readonly agents: number;
  /** Serf's timing profile (the agents run with its default). */
  readonly profile: 'lan';
  /** Spawning the first agent → every agent lists every agent alive, ms. */
  readonly startToJoinedMs: number;
  readonly events: SerfEventsResult;
  /** SIGKILL of an agent → every other agent has marked it `failed` (`perNodeMs` by agent). */
  readonly failureDetection: Omit<FailureDetectionResult, 'clusterSize' | 'pollMs'>;
  readonly goals: SerfGoals;
}

/** Serf could not be installed or started: why. */
export interface SerfAnchorMissing {
  readonly measured: false;
  readonly reason: string;
}

export type SerfAnchorResults = SerfAnchorMeasured | SerfAnchorMissing;

/** The goals relative to Serf; each `measured` is a ratio keymesh ÷ Serf. */
export interface SerfGoals {
  /** keymesh's rotation propagation p99 at the largest size ÷ Serf's median user-event propagation. */
  readonly propagationP99VsSerfMedian: Goal;
  /** keymesh's median SIGKILL → dead ÷ Serf's median SIGKILL → failed. */
  readonly killToDeadRatio: Goal;
}

/** Issue 19's goals relative to Serf, as ratios keymesh ÷ Serf. */
export const SERF_GOALS = {
  /** keymesh propagation p99 ÷ Serf's propagation median, at most. */
  propagationRatio: 1.0,
  /** keymesh kill → dead median ÷ Serf's kill → failed median, at most. */
  killToDeadRatio: 0.5,
} as const;

/** `a ÷ b`, or undefined when either is missing or `b` is not positive. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || b === undefined || !(b > 0) ? undefined : a / b;
}

const atMost = (what: string, limit: number, measured: number | undefined): Goal => ({
  what,
  limit,
  measured,
  met: measured === undefined ? undefined : measured <= limit,
});

/** The goals relative to Serf from keymesh's largest-size propagation, its failure detection and Serf's figures. */
export function serfGoals(
  keymesh: { readonly propagation: PropagationResult; readonly failureDetection: FailureDetectionResult },
  serf: { readonly events: SerfEventsResult; readonly failureDetection: { readonly medianMs: number } },
): SerfGoals {
  return {
    propagationP99VsSerfMedian: atMost(
      `rotation propagation p99 at ${keymesh.propagation.clusterSize} nodes ÷ Serf's median user-event propagation`,
      SERF_GOALS.propagationRatio,
      ratio(keymesh.propagation.p99Ms, serf.events.medianMs),
    ),
    killToDeadRatio: atMost(
      `median SIGKILL → dead on every node ÷ Serf's median SIGKILL → failed`,
      SERF_GOALS.killToDeadRatio,
      ratio(keymesh.failureDetection.medianMs, serf.failureDetection.medianMs),
    ),
  };
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (n < 10 ? n.toFixed(1) : int(n));
const times = (n: number | undefined) => (n === undefined ? '–' : `${n.toFixed(2)}×`);
const verdict = (g: Goal) => (g.met === undefined ? 'not measured' : g.met ? 'met' : '**not met**');

/** The comparison rows: keymesh's figure, Serf's, and keymesh ÷ Serf. */
export function serfComparisonRows(
  keymesh: { readonly propagation: PropagationResult; readonly failureDetection: FailureDetectionResult },
  serf: SerfAnchorMeasured,
): string[] {
  const p = keymesh.propagation;
  const e = serf.events;
  const k = keymesh.failureDetection;
  const f = serf.failureDetection;
  const row = (what: string, a: number, b: number) => `| ${what} | ${ms(a)} | ${ms(b)} | ${times(ratio(a, b))} |`;
  return [
    '| Measure (ms) | keymesh | Serf | keymesh ÷ Serf |',
    '|---|---:|---:|---:|',
    row(`Rotation / user event → every node, ${p.clusterSize} nodes: median`, p.medianMs, e.medianMs),
    row('… p99', p.p99Ms, e.p99Ms),
    row('… max', p.maxMs, e.maxMs),
    row(`SIGKILL → dead / failed on every other node, ${k.clusterSize} nodes: median`, k.medianMs, f.medianMs),
    row('… max', k.maxMs, f.maxMs),
  ];
}

/** The goal rows: each goal's ratio, its limit and the verdict. */
export function serfGoalRows(goals: SerfGoals): string[] {
  return [
    '| Goal (keymesh ÷ Serf) | keymesh ÷ Serf | Limit | Verdict |',
    '|---|---:|---|---|',
    ...[goals.propagationP99VsSerfMedian, goals.killToDeadRatio].map(
      (g) => `| ${g.what} | ${times(g.measured)} | ≤ ${g.limit.toFixed(1)}× | ${verdict(g)} |`,
    ),
  ];
}

const perRun = (runs: readonly FailureDetectionRun[]) => runs.map((r) => `${r.victim} ${int(r.allDeadMs)}`).join(', ');

/** The Markdown section on Serf (`undefined`: results recorded before Serf was measured beside the cluster). */
export function renderSerfSection(
  serf: SerfAnchorResults | undefined,
  keymesh: { readonly propagation: PropagationResult; readonly failureDetection: FailureDetectionResult },
): string[] {
  const lines = ['## Beside HashiCorp Serf', ''];
  if (serf === undefined)
    return [...lines, 'No Serf figures in these results (recorded before Serf was measured beside the cluster).', ''];
  if (!serf.measured)
    return [...lines, `Serf was not measured: ${serf.reason}. No goal relative to Serf is judged.`, ''];
  const e = serf.events;
  return [
    ...lines,
    `Serf ${serf.version}, ${serf.agents} agents on loopback started by the benchmark right after keymesh's nodes were stopped ` +
      `(default \`${serf.profile}\` profile, every agent joined to the first; all listed each other alive ` +
      `${(serf.startToJoinedMs / 1000).toFixed(1)} s after spawning). User events: ${e.samples.length} \`serf event -coalesce=false\`, ` +
      `${e.spacingMs} ms apart, round-robin over the agents; each agent's log streamed by \`serf monitor\`, and the propagation of an ` +
      "event = the last other agent's `Received event` line − the sending agent's own (this process's clock at each line's arrival; " +
      `the CLI's start-up is not counted: median ${ms(median(e.samples.map((s) => s.sendMs)))} ms to the sender's line). Failure ` +
      `detection: SIGKILL of one agent (never the first), until every other agent has logged \`EventMemberFailed\` for it (the ` +
      "moment Serf marks it `failed`, timed as the line arrives, so without keymesh's 50 ms poll lag; every survivor's " +
      "`serf members` is then checked to show it `failed`); the agent is restarted and waited for between kills, as keymesh's nodes are.",
    '',
    ...serfComparisonRows(keymesh, serf),
    '',
    ...serfGoalRows(serf.goals),
    '',
    `Serf per event (ms, in the order sent): ${e.samples.map((s) => int(s.propagationMs)).join(', ')}. ` +
      `Serf SIGKILL → failed on every other agent (ms): ${perRun(serf.failureDetection.runs)}. Steal during the events: ${int(e.stealPercent)}%.`,
    '',
  ];
}
