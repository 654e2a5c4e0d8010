/** The expired-records benchmark's result record (the `expired` part of the raw JSON) and its Markdown rendering. */
import { median, type MachineInfo } from './report.js';

/** The data directories compared, each started from a fresh copy of its template. */
export const SCENARIOS = ['empty', 'expired', 'collected', 'live'] as const;
export type Scenario = (typeof SCENARIOS)[number];

const DESCRIPTIONS: Record<Scenario, string> = {
  empty: 'empty node (its map and keys only)',
  expired: 'records that expired while the node was down, so its start removes them',
  collected: 'records that expired and were removed by the running node before it stopped',
  live: 'records still live, to show that costs follow live data',
};

export interface ExpiredSettings {
  /** Expiring records written into each filled data directory. */
  readonly records: number;
  /** Measured starts per scenario (interleaved across the scenarios). */
  readonly starts: number;
  /** Idle time after the register serves, before RSS and metrics are read. */
  readonly idleMs: number;
  readonly readyPollMs: number;
  /** Saves in flight at once while filling (the store group-commits them). */
  readonly fillChunk: number;
  /** Payload of each record, before its expiry header. */
  readonly valueBytes: number;
  /** Expiry of the `expired` scenario's records: this long before the fill. */
  readonly expiredAgoS: number;
  /**
   * The `collected` records become due (expiry plus grace) this long after their fill began plus twice the longest
   * fill before it, so that the node started on them is running when they do.
   */
  readonly collectMarginS: number;
  /** Expiry of the `live` scenario's records: this long after the fill. */
  readonly liveForS: number;
  /** The node's `clockSkewMs` (the config default unless changed); a record is removed 2 × this after its expiry. */
  readonly clockSkewMs: number;
}

/** One measured start. */
export interface StartRun {
  /** `du` of the database directory (allocated blocks) before the start and after the node stopped. */
  readonly dbBytesBefore: number;
  readonly dbBytesAfter: number;
  readonly spawnToReadyMs: number;
  /** Spawn → first 200 of a register get-or-create (the register role serves). */
  readonly spawnToServingMs: number;
  /** CPU the process used up to its first 200 from `/readyz` (all threads). */
  readonly cpuSecondsToReady: number;
  /** VmRSS once serving and idle for `idleMs`. */
  readonly idleRssKiB: number;
  /** `keymesh_register_records` and `keymesh_register_records_expired_total` after the idle time. */
  readonly recordsHeld: number | undefined;
  readonly recordsExpiredTotal: number | undefined;
  /** `expired` only: spawn → the running node's sweeps removed every record (metrics), the node stopped after. */
  readonly spawnToSweptMs?: number;
}

export interface ScenarioResult {
  readonly scenario: Scenario;
  /** `du` of the template's database directory, as every start finds it. */
  readonly templateDbBytes: number;
  readonly runs: readonly StartRun[];
  readonly medians: {
    readonly dbBytesAfter: number;
    readonly spawnToReadyMs: number;
    readonly spawnToServingMs: number;
    readonly cpuSecondsToReady: number;
    readonly idleRssKiB: number;
  };
}

/** How the `collected` template was made: a running node that removed the records itself. */
export interface Collection {
  /** The records' expiry, and when they became due, after their fill began (s; the expiry may lie before it). */
  readonly expiryAfterFillS: number;
  readonly dueAfterFillS: number;
  /** From the records being due (expiry + grace) to `keymesh_register_records_expired_total` reaching the count. */
  readonly dueToCollectedMs: number;
  readonly dbBytesBeforeCollection: number;
  readonly dbBytesAfterCollection: number;
}

export interface ExpiredResults {
  readonly date: string;
  readonly durationSeconds: number;
  readonly machine: MachineInfo;
  readonly placement: string;
  readonly loadAverage: { readonly start: number; readonly end: number };
  readonly settings: ExpiredSettings;
  /** How long writing the records took, per filled template (ms). */
  readonly fillMs: Readonly<Partial<Record<Scenario, number>>>;
  readonly collection: Collection;
  readonly scenarios: readonly ScenarioResult[];
}

type Figure = keyof ScenarioResult['medians'];

export function summarizeScenario(
  scenario: Scenario,
  templateDbBytes: number,
  runs: readonly StartRun[],
): ScenarioResult {
  const m = (f: Figure) => median(runs.map((r) => r[f]));
  return {
    scenario,
    templateDbBytes,
    runs,
    medians: {
      dbBytesAfter: m('dbBytesAfter'),
      spawnToReadyMs: m('spawnToReadyMs'),
      spawnToServingMs: m('spawnToServingMs'),
      cpuSecondsToReady: m('cpuSecondsToReady'),
      idleRssKiB: m('idleRssKiB'),
    },
  };
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
/** A size with its unit: KiB below 1 MiB, else MiB. */
const size = (bytes: number) => (bytes < 2 ** 20 ? `${int(bytes / 1024)} KiB` : `${(bytes / 2 ** 20).toFixed(1)} MiB`);
const ratio = (n: number) => `${n.toFixed(2)}×`;
const spread = (values: readonly number[], fmt: (n: number) => string) =>
  `${fmt(Math.min(...values))}–${fmt(Math.max(...values))}`;

/** Median of `s` against the empty node: ratio, and whether it lies within the empty node's own spread. */
function versusEmpty(s: ScenarioResult, empty: ScenarioResult, f: Figure, runValue: (r: StartRun) => number): string {
  if (s === empty) return '1.00×';
  const values = empty.runs.map(runValue);
  const within = s.medians[f] >= Math.min(...values) && s.medians[f] <= Math.max(...values);
  return `${ratio(s.medians[f] / empty.medians[f])}${within ? ' (within)' : ''}`;
}

/** The Markdown summary: one table of medians with ratios to the empty node, then every start. */
export function renderExpiredMarkdown(r: ExpiredResults): string {
  const s = r.settings;
  const empty = r.scenarios.find((x) => x.scenario === 'empty')!;
  const graceS = (2 * s.clockSkewMs) / 1000;
  const lines = [
    `# keymesh expired-records benchmark: a node after ${int(s.records)} expired replay records vs an empty node`,
    '',
    `${r.date} · ${r.machine.cpuModel} × ${r.machine.cpuCount} · ${(r.machine.totalMemoryBytes / 2 ** 30).toFixed(1)} GiB RAM · ` +
      `Node ${r.machine.node} · ${r.machine.platform} ${r.machine.release} ${r.machine.arch} · run took ${int(r.durationSeconds)} s`,
    '',
    'One `keymesh start` node (bootstrapExpect 1, replication factor 1, default config otherwise) is started once to make its data directory ' +
      `(cluster map, keys), then stopped. Copies of that directory are filled, in the benchmark's process, with ${int(s.records)} expiring register ` +
      `records written as the node's acceptor writes them (\`SealedAcceptorStore.save\`, sealed with the node's key: key \`jti/<sha-256>\`, promised, ` +
      `accepted and committed value = \`withExpiry(exp, ${s.valueBytes} random bytes)\`, group-committed ${int(s.fillChunk)} saves at a time). A record is ` +
      `removed once its expiry plus 2 × clockSkewMs (${graceS} s) has passed, by the running node's sweep (every 5 s, and once right after a start, beside the map's work: it never holds up the start).`,
    '',
    ...SCENARIOS.map(
      (x) =>
        `- **${x}**: ${DESCRIPTIONS[x]}` +
        (x === 'expired'
          ? ` (expired ${s.expiredAgoS / 3600} h before the fill)`
          : x === 'live'
            ? ` (expiring ${s.liveForS / 3600} h after the fill)`
            : x === 'collected'
              ? ` (expiry ${r.collection.expiryAfterFillS.toFixed(0)} s from the fill's beginning, due ${r.collection.dueAfterFillS.toFixed(0)} s from it; removed ${(r.collection.dueToCollectedMs / 1000).toFixed(1)} s after they became due; database ` +
                `${size(r.collection.dbBytesBeforeCollection)} before the collection, ${size(r.collection.dbBytesAfterCollection)} after it, on disk)`
              : ''),
    ),
    '',
    `Each scenario is started ${s.starts} times, every start from a fresh copy of its template (\`cpSync\`), the scenarios interleaved. Per start: ` +
      `spawn → first 200 from \`/readyz\` (polled every ${s.readyPollMs} ms; the index of the register keys runs before it), spawn → ` +
      `first 200 of a register get-or-create (the register role serves), the process's CPU time up to ready, VmRSS once serving and idle for ${s.idleMs / 1000} s, ` +
      'and `du` (allocated blocks) of the database directory before the start and after the node stopped. Medians over the starts; "(within)" means ' +
      `the median lies within the empty node's own spread (min–max over its ${s.starts} starts). CPU placement: ${r.placement}. One-minute load average ` +
      `${r.loadAverage.start.toFixed(2)} at the start, ${r.loadAverage.end.toFixed(2)} at the end.`,
    '',
    '| Scenario | Database before | Database after | Spawn → ready (ms) | Spawn → register serves (ms) | CPU to ready (s) | Idle RSS (MiB) |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...r.scenarios.map(
      (x) =>
        `| ${x.scenario} | ${size(x.templateDbBytes)} | ${size(x.medians.dbBytesAfter)} | ${int(x.medians.spawnToReadyMs)} | ` +
        `${int(x.medians.spawnToServingMs)} | ${x.medians.cpuSecondsToReady.toFixed(2)} | ${(x.medians.idleRssKiB / 1024).toFixed(1)} |`,
    ),
    '',
    '| Scenario vs empty (median / median) | Database before | Database after | Spawn → ready | Spawn → register serves | CPU to ready | Idle RSS |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...r.scenarios.map(
      (x) =>
        `| ${x.scenario} | ${ratio(x.templateDbBytes / empty.templateDbBytes)} | ${versusEmpty(x, empty, 'dbBytesAfter', (q) => q.dbBytesAfter)} | ` +
        `${versusEmpty(x, empty, 'spawnToReadyMs', (q) => q.spawnToReadyMs)} | ${versusEmpty(x, empty, 'spawnToServingMs', (q) => q.spawnToServingMs)} | ` +
        `${versusEmpty(x, empty, 'cpuSecondsToReady', (q) => q.cpuSecondsToReady)} | ${versusEmpty(x, empty, 'idleRssKiB', (q) => q.idleRssKiB)} |`,
    ),
    '',
    '## Every start',
    '',
    'Spread (min–max over the starts) and the records the node reported holding after the idle time (`keymesh_register_records`, set when a ' +
      'sweep ends: 0 means the first one had not ended yet; `keymesh_register_records_expired_total` counts what the sweeps removed). For `expired`, ' +
      'the node then runs until its sweeps removed every record, and the database after is measured once it stopped.',
    '',
    '| Scenario | Spawn → ready (ms) | Spawn → serves (ms) | Idle RSS (MiB) | Database after | Records held | Expired total |',
    '|---|---|---|---|---|---|---|',
    ...r.scenarios.map(
      (x) =>
        `| ${x.scenario} | ${spread(
          x.runs.map((q) => q.spawnToReadyMs),
          int,
        )} | ${spread(
          x.runs.map((q) => q.spawnToServingMs),
          int,
        )} | ` +
        `${spread(
          x.runs.map((q) => q.idleRssKiB / 1024),
          (n) => n.toFixed(1),
        )} | ${spread(
          x.runs.map((q) => q.dbBytesAfter),
          size,
        )} | ` +
        `${[...new Set(x.runs.map((q) => q.recordsHeld ?? '–'))].join(', ')} | ${[...new Set(x.runs.map((q) => q.recordsExpiredTotal ?? '–'))].join(', ')} |`,
    ),
    '',
    ...(() => {
      const swept = r.scenarios
        .find((x) => x.scenario === 'expired')!
        .runs.flatMap((q) => (q.spawnToSweptMs === undefined ? [] : [q.spawnToSweptMs]));
      return swept.length === 0
        ? []
        : [
            `expired: spawn → every record removed by the running node, median ${int(median(swept))} ms (${spread(swept, int)}).`,
            '',
          ];
    })(),
    `Filling took ${Object.entries(r.fillMs)
      .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
      .join(', ')} (${int(s.records)} records each).`,
    '',
  ];
  return `${lines.join('\n')}\n`;
}
