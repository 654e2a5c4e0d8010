/** The cluster benchmark's result record (the `cluster` part of the raw JSON) and its Markdown rendering. */
import { median, type MachineInfo } from './report.js';
import { renderSerfSection, type SerfAnchorResults } from './serf-report.js';

/** One forced rotation and how long its kid took to reach every other node. */
export interface RotationSample {
  readonly node: string;
  readonly use: 'sig' | 'enc';
  readonly kid: string;
  /** `time` of the rotating node's `forced rotation` log line (ms since the epoch). */
  readonly rotatedAt: number;
  /** Latest `key learned from a peer` time over the other nodes, minus `rotatedAt`. */
  readonly propagationMs: number;
  /** The node whose `key learned from a peer` came last. */
  readonly lastNode: string;
}

/** Rotation propagation in a cluster of one size. */
export interface PropagationResult {
  readonly clusterSize: number;
  readonly rotations: RotationSample[];
  readonly medianMs: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Spawn of node 1 → every node lists every node alive with agreeing key-set digests. */
  readonly startToConvergedMs: number;
  readonly stealPercent: number;
}

/** One SIGKILL and when every other node called the killed node `dead`. */
export interface FailureDetectionRun {
  readonly victim: string;
  /** Per surviving node: SIGKILL → first `/v1/cluster` answer showing the victim `dead` (ms). */
  readonly perNodeMs: Readonly<Record<string, number>>;
  /** The latest of `perNodeMs`: SIGKILL → `dead` on every other node. */
  readonly allDeadMs: number;
  readonly stealPercent: number;
}

export interface FailureDetectionResult {
  readonly clusterSize: number;
  readonly pollMs: number;
  readonly runs: FailureDetectionRun[];
  readonly medianMs: number;
  readonly maxMs: number;
}

/** One node's figures while the cluster is idle. */
export interface RestingNode {
  readonly name: string;
  readonly rssKiB: number;
  /** RSS once idle `settledMs` after convergence. */
  readonly settledRssKiB: number;
  /** CPU (user + system) over the traffic window, % of one core. */
  readonly cpuPercent: number;
  /** Gossip payload bytes sent/received per second; undefined when the traffic was not measured. */
  readonly sentBytesPerSecond: number | undefined;
  readonly receivedBytesPerSecond: number | undefined;
  readonly connections: number | undefined;
}

/** The idle cluster: RSS after `idleMs`, then CPU and gossip traffic over `windowMs`, then RSS at `settledMs`. */
export interface RestResult {
  readonly clusterSize: number;
  readonly idleMs: number;
  readonly windowMs: number;
  readonly settledMs: number;
  readonly nodes: RestingNode[];
  readonly medianRssKiB: number;
  readonly maxRssKiB: number;
  readonly medianSettledRssKiB: number;
  readonly maxSettledRssKiB: number;
  /** Why the traffic was not measured; undefined when it was. */
  readonly trafficSkipped: string | undefined;
  readonly medianSentBytesPerSecond: number | undefined;
  readonly maxSentBytesPerSecond: number | undefined;
  readonly socketsOpened: number | undefined;
  readonly socketsClosed: number | undefined;
  readonly stealPercent: number;
}

/** A goal from the issue and whether this run met it. */
export interface Goal {
  readonly what: string;
  readonly limit: number;
  readonly measured: number | undefined;
  readonly met: boolean | undefined;
}

/** Everything the cluster benchmark produced. */
export interface ClusterResults {
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: MachineInfo;
  /** How the node processes were placed on CPUs. */
  readonly placement: string;
  /** One-minute load average at the start and at the end: other work on the machine shows here. */
  readonly loadAverage: { readonly start: number; readonly end: number };
  readonly settings: Readonly<Record<string, number | readonly number[]>>;
  /** The membership timing the nodes ran with (keymesh's defaults). */
  readonly membership: {
    readonly heartbeatIntervalMs: number;
    readonly suspectAfterMs: number;
    readonly deadAfterMs: number;
  };
  readonly propagation: PropagationResult[];
  readonly failureDetection: FailureDetectionResult;
  readonly rest: RestResult;
  readonly goals: {
    readonly propagationP99Ms: Goal;
    readonly killToDeadMs: Goal;
    readonly rssBytes: Goal;
  };
  /** Serf measured beside the largest cluster (absent from results recorded before it was). */
  readonly serf?: SerfAnchorResults;
}

/** Nearest-rank percentile (`p` in 0..100) of a non-empty list: the smallest value with ≥ p% of values at or below it. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  // (p × n) / 100, not (p / 100) × n: the latter rounds up past an exact rank for some p (7 % of 100 is 7.000000000000001)
  return sorted[Math.max(0, Math.ceil((p * sorted.length) / 100) - 1)]!;
}

/** Makes a goal record: met when `measured` is at most `limit`. */
export function goalAtMost(what: string, limit: number, measured: number | undefined): Goal {
  return { what, limit, measured, met: measured === undefined ? undefined : measured <= limit };
}

/** Above this much hypervisor steal in any phase, the summary warns that the figures are noisy. */
const NOISY_STEAL_PERCENT = 5;

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => (n < 10 ? n.toFixed(1) : int(n));
const mib = (kib: number) => (kib / 1024).toFixed(1);
const plural = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;
const verdict = (g: Goal) => (g.met === undefined ? 'not measured' : g.met ? 'met' : '**not met**');

function stealNote(r: ClusterResults): string {
  const steals = [
    ...r.propagation.map((p) => p.stealPercent),
    ...r.failureDetection.runs.map((k) => k.stealPercent),
    r.rest.stealPercent,
  ];
  const steal = Math.max(0, ...steals);
  return steal > NOISY_STEAL_PERCENT
    ? `**Noisy machine:** the hypervisor took up to ${int(steal)}% of the CPU time during a phase (steal); the per-phase figures below say where.`
    : `Hypervisor steal stayed at or below ${int(steal)}% in every phase.`;
}

/** The Markdown summary: headline table with the goals, then one section per measurement. */
export function renderClusterMarkdown(r: ClusterResults): string {
  const m = r.membership;
  const fd = r.failureDetection;
  const rest = r.rest;
  const largest = r.propagation.at(-1)!;
  const lines = [
    '# keymesh cluster benchmark',
    '',
    `${r.date} · ${r.machine.cpuModel} × ${r.machine.cpuCount} · ${(r.machine.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM · ` +
      `Node ${r.machine.node} · ${r.machine.platform} ${r.machine.release} ${r.machine.arch} · run took ${int(r.durationSeconds)} s`,
    '',
    `CPU placement: ${r.placement}.`,
    `Nodes: real \`keymesh start\` processes on loopback, one management key, default membership timing ` +
      `(heartbeat ${m.heartbeatIntervalMs} ms, suspect after ${m.suspectAfterMs} ms, dead after ${m.deadAfterMs} ms), ` +
      `\`jwks.maxAgeMs\` ${r.settings.jwksMaxAgeMs} and \`prePublishMs\` ${r.settings.prePublishMs} so forced rotations are legal.`,
    `${stealNote(r)} One-minute load average ${r.loadAverage.start.toFixed(2)} at the start, ${r.loadAverage.end.toFixed(2)} at the end ` +
      `(${r.machine.cpuCount} CPUs; above that, other work on the machine competed with the nodes).`,
    '',
    '| Measurement | Median | p99 | Max | Goal |',
    '|---|---:|---:|---:|---|',
    ...r.propagation.map((p) => {
      const goal =
        p === largest ? `p99 ≤ ${r.goals.propagationP99Ms.limit} ms: ${verdict(r.goals.propagationP99Ms)}` : '–';
      return `| Rotation → new kid on every node, ${p.clusterSize} nodes (ms, ${plural(p.rotations.length, 'rotation')}) | ${ms(p.medianMs)} | ${ms(p.p99Ms)} | ${ms(p.maxMs)} | ${goal} |`;
    }),
    `| SIGKILL → \`dead\` on every other node, ${fd.clusterSize} nodes (ms, ${plural(fd.runs.length, 'kill')}) | ${int(fd.medianMs)} | – | ${int(fd.maxMs)} | ≤ ${int(r.goals.killToDeadMs.limit)} ms: ${verdict(r.goals.killToDeadMs)} |`,
    `| RSS per node, ${rest.clusterSize} nodes idle ${rest.idleMs / 1000} s after convergence (MiB) | ${mib(rest.medianRssKiB)} | – | ${mib(rest.maxRssKiB)} | – |`,
    `| RSS per node, ${rest.clusterSize} nodes idle ${rest.settledMs / 1000} s after convergence (MiB) | ${mib(rest.medianSettledRssKiB)} | – | ${mib(rest.maxSettledRssKiB)} | ` +
      `largest ≤ 100 MB (${(r.goals.rssBytes.limit / 2 ** 20).toFixed(1)} MiB): ${verdict(r.goals.rssBytes)} |`,
    rest.trafficSkipped === undefined
      ? `| Gossip bytes sent per node per second at rest, ${rest.clusterSize} nodes (B/s over ${rest.windowMs / 1000} s) | ${int(rest.medianSentBytesPerSecond!)} | – | ${int(rest.maxSentBytesPerSecond!)} | – |`
      : `| Gossip bytes per node per second at rest | skipped: ${rest.trafficSkipped} | – | – | – |`,
    '',
    ...propagationSection(r),
    ...failureSection(r),
    ...restSection(r),
    ...renderSerfSection(r.serf, { propagation: largest, failureDetection: fd }),
  ];
  return `${lines.join('\n')}\n`;
}

function propagationSection(r: ClusterResults): string[] {
  const s = r.settings;
  return [
    '## Rotation propagation',
    '',
    `Per cluster size: a fresh cluster in a new temp directory, started node by node and waited for until every node lists every ` +
      `node \`alive\` with agreeing key-set digests; then ${s.rotationsPerSize} forced rotations (\`POST /v1/keys/rotate\`) ` +
      `${s.rotationSpacingMs} ms apart, round-robin over the nodes, alternating \`sig\` and \`enc\`. Propagation of one rotation = ` +
      "the latest `time` of a `key learned from a peer` log line for its kid on the other nodes − the `time` of the rotating node's " +
      '`forced rotation` line (one machine clock, millisecond resolution; the rotating node logs after it has stored and announced ' +
      `the key). p99 is nearest-rank: with fewer than 100 rotations it is the largest value or next to it.`,
    '',
    '| Nodes | Start → converged (s) | Rotations | Median (ms) | p99 (ms) | Max (ms) | Slowest receiver (most often) | Steal |',
    '|---:|---:|---:|---:|---:|---:|---|---:|',
    ...r.propagation.map((p) => {
      const counts = new Map<string, number>();
      for (const x of p.rotations) counts.set(x.lastNode, (counts.get(x.lastNode) ?? 0) + 1);
      const [slowest, times] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
      return (
        `| ${p.clusterSize} | ${(p.startToConvergedMs / 1000).toFixed(1)} | ${p.rotations.length} | ${ms(p.medianMs)} | ${ms(p.p99Ms)} | ${ms(p.maxMs)} | ` +
        `${slowest} (${times}×) | ${int(p.stealPercent)}% |`
      );
    }),
    '',
    'Every rotation (ms, in the order issued):',
    '',
    ...r.propagation.map((p) => `- ${p.clusterSize} nodes: ${p.rotations.map((x) => x.propagationMs).join(', ')}`),
    '',
  ];
}

function failureSection(r: ClusterResults): string[] {
  const fd = r.failureDetection;
  const names = Object.keys(fd.runs[0]?.perNodeMs ?? {});
  return [
    '## Failure detection',
    '',
    `${fd.clusterSize}-node cluster: SIGKILL of one node (a different one each time, never node-1, the seed), then every other node's ` +
      `\`/v1/cluster\` polled every ${fd.pollMs} ms until it shows the killed node \`dead\`; the time of a node is that of the first ` +
      'answer showing it (so up to one poll interval plus one request late). Between kills the node is restarted on its data ' +
      'directory and ports and the cluster is waited for until all are alive again.',
    '',
    '| Kill | Killed | SIGKILL → dead on every other node (ms) | Fastest node (ms) | Median node (ms) | Steal |',
    '|---:|---|---:|---:|---:|---:|',
    ...fd.runs.map((k, i) => {
      const v = Object.values(k.perNodeMs);
      return `| ${i + 1} | ${k.victim} | ${int(k.allDeadMs)} | ${int(Math.min(...v))} | ${int(median(v))} | ${int(k.stealPercent)}% |`;
    }),
    '',
    names.length === 0
      ? ''
      : `Per node and kill (ms): ${fd.runs
          .map(
            (k) =>
              `${k.victim} killed: ${Object.entries(k.perNodeMs)
                .map(([n, t]) => `${n} ${int(t)}`)
                .join(', ')}`,
          )
          .join('; ')}.`,
    '',
  ];
}

function restSection(r: ClusterResults): string[] {
  const rest = r.rest;
  const traffic = rest.trafficSkipped === undefined;
  const bytes = (n: number | undefined) => (n === undefined ? '–' : int(n));
  return [
    '## At rest',
    '',
    `${rest.clusterSize}-node cluster, before any forced rotation: converged, then idle ${rest.idleMs / 1000} s; RSS is \`VmRSS\` from ` +
      `\`/proc/<pid>/status\` at that moment, and again ${rest.settledMs / 1000} s after convergence, the nodes idle all along (the goal is ` +
      'judged on the later one: early on a node still holds what its start allocated). Then, for ' +
      `${rest.windowMs / 1000} s with no requests to any node, CPU time from ` +
      '`/proc/<pid>/stat` and ' +
      (traffic
        ? 'TCP payload bytes from `ss -tinpH` (`bytes_sent`/`bytes_received`) of every established socket the node owns with a p2p port at ' +
          `either end, so connections it dialled count too. Sockets opened during the window: ${rest.socketsOpened}; closed (their bytes lost): ${rest.socketsClosed}.`
        : `no traffic figures: ${rest.trafficSkipped}.`) +
      ` Steal during the window: ${int(rest.stealPercent)}%.`,
    '',
    `| Node | RSS at ${rest.idleMs / 1000} s (MiB) | RSS at ${rest.settledMs / 1000} s (MiB) | CPU (% of one core) | Gossip sent (B/s) | Gossip received (B/s) | p2p connections |`,
    '|---|---:|---:|---:|---:|---:|---:|',
    ...rest.nodes.map(
      (n) =>
        `| ${n.name} | ${mib(n.rssKiB)} | ${mib(n.settledRssKiB)} | ${n.cpuPercent.toFixed(1)}% | ${bytes(n.sentBytesPerSecond)} | ${bytes(n.receivedBytesPerSecond)} | ${n.connections ?? '–'} |`,
    ),
    '',
  ];
}
