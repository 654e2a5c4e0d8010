/**
 * The report of a chaos run: `report.md` (the run, its verdict and violations, the fault timeline, operation
 * outcomes, latency, availability per fault window, convergence after each heal, liveness after the final heal)
 * and `latency.svg` beside it.
 * Everything is computed from the history, the JWKS snapshots and the checker's violations, so a report can be
 * rendered again from a run's results directory. Times are shown in seconds since the run started.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Violation } from './checker.js';
import { MEMBERSHIP_READ_EVERY_MS, type HealLiveness, type WindowLiveness } from './heal-liveness.js';
import type { HistoryEvent, JwksSnapshot, OpKind } from './history.js';
import {
  ROUND_WINDOW_MS,
  availabilityByWindow,
  byOpKindOrder,
  completedOps,
  convergenceAfterHeals,
  type Convergence,
  faultWindows,
  latencyByOp,
  windowNodes,
  type CompletedOp,
} from './liveness.js';
import { renderSvg } from './svg.js';

/** The Markdown report's file name in the results directory. */
export const REPORT_FILE = 'report.md';
/** The picture's file name, beside the report. */
export const SVG_FILE = 'latency.svg';

/** A broken invariant as the checker reports it. */
export type ReportViolation = Violation;

/** How the run was set up. */
export interface RunInfo {
  /** The command line that ran it. */
  readonly command: string;
  readonly seed: number;
  readonly nodes: number;
  /** Planned duration of the workload, seconds. */
  readonly durationS: number;
  /** The fault kinds the schedule drew from. */
  readonly faults: readonly string[];
  readonly clients: number;
  /** Harness wall clock at the start and end of the run, ms since the epoch. */
  readonly startedAt: number;
  readonly endedAt: number;
  /** How partitions were made (for example `iptables` or `proxy`). */
  readonly partitionMethod: string;
  readonly resultsDir: string;
  readonly notes?: readonly string[];
}

/** What a report is rendered from. */
export interface ReportInput {
  readonly run: RunInfo;
  readonly history: readonly HistoryEvent[];
  readonly snapshots: readonly JwksSnapshot[];
  readonly violations: readonly ReportViolation[];
  /** The verdict on liveness after the final heal; absent when the run did not reach the heal. */
  readonly healLiveness?: HealLiveness;
  /** How long after each window's heal every node was alive on every other (from the membership views). */
  readonly afterEachHeal?: readonly WindowLiveness[];
}

/** Escapes a Markdown table cell: `|` and line breaks would end the cell or the row, and a backslash would escape what follows. */
export function cell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** Text as a Markdown code span, fenced with more backticks than it contains in a row. */
function code(text: string): string {
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  return longest === 0 ? `${fence}${text}${fence}` : `${fence} ${text} ${fence}`;
}

const row = (cells: readonly (string | number)[]) => `| ${cells.map((c) => cell(String(c))).join(' | ')} |`;
const table = (head: readonly string[], rows: readonly (readonly (string | number)[])[]) =>
  [row(head), `|${head.map(() => ' --- |').join('')}`, ...rows.map(row)].join('\n');
const ms = (n: number | undefined) => (n === undefined ? '–' : String(Math.round(n)));

/** Renders the Markdown report; `svgFile` is the picture's name relative to the report. */
export function renderReport(input: ReportInput & { readonly svgFile: string }): string {
  const { run, history, snapshots, violations } = input;
  const at = (t: number) => ((t - run.startedAt) / 1000).toFixed(1);
  const ops = completedOps(history);
  const windows = faultWindows(history);
  const verdict =
    violations.length === 0
      ? 'PASS (no violations)'
      : `FAIL (${violations.length} violation${violations.length === 1 ? '' : 's'})`;
  const out: string[] = [`# Chaos run, seed ${run.seed}: ${verdict}`, ''];

  out.push('## The run', '');
  out.push(`- Command: ${code(run.command)}`);
  out.push(`- Nodes: ${run.nodes}; clients: ${run.clients}`);
  out.push(
    `- Duration: ${run.durationS} s planned, ${at(run.endedAt)} s from start to end ` +
      `(${new Date(run.startedAt).toISOString()} to ${new Date(run.endedAt).toISOString()})`,
  );
  out.push(`- Faults: ${run.faults.length === 0 ? 'none' : run.faults.join(', ')}`);
  out.push(`- Partition method: ${run.partitionMethod}`);
  out.push(`- Results: ${code(run.resultsDir)}`);
  for (const note of run.notes ?? []) out.push(`- Note: ${note}`);
  out.push('');

  out.push('## Violations', '');
  out.push(
    violations.length === 0
      ? 'none'
      : table(
          ['invariant', 'time (s)', 'node', 'message', 'ops'],
          violations.map((v) => [
            v.invariant,
            v.time === undefined ? '–' : at(v.time),
            v.node ?? '–',
            v.message,
            v.ops?.join(', ') ?? '–',
          ]),
        ),
  );
  out.push('');

  out.push('## Faults', '');
  out.push(
    windows.length === 0
      ? 'none'
      : table(
          ['#', 'kind', 'nodes', 'start (s)', 'end (s)', 'duration (s)', 'detail'],
          windows.map((w) => [
            w.id,
            w.kind,
            windowNodes(w),
            at(w.start),
            w.end === undefined ? 'not ended' : at(w.end),
            `${(((w.end ?? run.endedAt) - w.start) / 1000).toFixed(1)}${w.end === undefined ? ' (to run end)' : ''}`,
            Object.entries(w.detail ?? {})
              .map(([k, v]) => `${k}=${v}`)
              .join(', ') || '–',
          ]),
        ),
  );
  out.push('');

  out.push('## Operations', '');
  out.push(operationsTable(ops));
  out.push('');

  out.push('## Latency', '');
  out.push(
    'Over operations that completed ok, invoke to completion on the harness clock (nearest-rank percentiles).',
    '',
  );
  const latency = latencyByOp(ops);
  out.push(
    latency.length === 0
      ? 'none'
      : table(
          ['op', 'ok', 'p50 (ms)', 'p99 (ms)'],
          latency.map((l) => [l.op, l.count, ms(l.p50Ms), ms(l.p99Ms)]),
        ),
  );
  out.push('');

  out.push('## Availability per fault window', '');
  out.push(
    'ok / (ok + fail + unknown) of the operations invoked while the window was open; an operation invoked while ' +
      'windows overlapped counts in each of them, and operations still pending at the end count as unknown.',
    '',
  );
  out.push(
    table(
      ['window', 'start (s)', 'end (s)', 'ok', 'fail', 'unknown', 'availability'],
      availabilityByWindow(ops, windows, run.startedAt, run.endedAt).map((a) => [
        a.label,
        at(a.start),
        at(a.end),
        a.ok,
        a.fail,
        a.unknown,
        a.availability === undefined ? '–' : `${(a.availability * 100).toFixed(1)} %`,
      ]),
    ),
  );
  out.push('');

  out.push('## Convergence after each heal', '');
  out.push(
    `JWKS snapshots taken within ${ROUND_WINDOW_MS} ms of each other form a round; the nodes have converged once a ` +
      'round that opens after the heal has every node answering, covers every node that answered before the fault, ' +
      'and shows one kid set. The time runs from the heal to the last snapshot of that round. Rounds after the next ' +
      'fault window opened do not count.',
    '',
  );
  const convergence = convergenceAfterHeals(windows, snapshots);
  out.push(
    convergence.length === 0
      ? 'No fault window ended.'
      : table(
          ['window', 'kind', 'healed at (s)', 'converged after (ms)'],
          convergence.map((c) => [`#${c.windowId}`, c.kind, at(c.healedAt), convergedCell(c)]),
        ),
  );
  out.push('');

  out.push('## Liveness after each heal', '');
  out.push(
    `Every node's membership view (\`GET /v1/cluster\`) is read every ${MEMBERSHIP_READ_EVERY_MS / 1000} s; the time runs from the heal ` +
      'to the last answer of the first round, sent after the heal, in which every node answered and listed every other node ' +
      '`alive`. Rounds after the next fault window opened do not count. Reported, not asserted; the final heal is (below).',
    '',
  );
  const afterEach = input.afterEachHeal ?? [];
  out.push(
    afterEach.length === 0
      ? 'No fault window ended.'
      : table(
          ['window', 'kind', 'healed at (s)', 'all alive after (ms)'],
          afterEach.map((l) => [
            `#${l.windowId}`,
            l.kind,
            at(l.healedAt),
            l.ms !== undefined
              ? ms(l.ms)
              : l.interruptedAt === undefined
                ? 'not seen'
                : `not before the next fault (${((l.interruptedAt - l.healedAt) / 1000).toFixed(1)} s later)`,
          ]),
        ),
  );
  out.push('');

  out.push('## Liveness after the final heal', '');
  out.push(healLivenessText(input.healLiveness, at), '');

  out.push('## Latency and errors over time', '');
  out.push(`![latency and errors over time](${input.svgFile})`, '');
  return out.join('\n');
}

/** Outcome counts per operation kind with a total row. */
function operationsTable(ops: readonly CompletedOp[]): string {
  const outcomes = ['ok', 'fail', 'unknown', 'pending'] as const;
  const counts = new Map<OpKind, Record<CompletedOp['outcome'], number>>();
  const total = { ok: 0, fail: 0, unknown: 0, pending: 0 };
  for (const op of ops) {
    const c = counts.get(op.op) ?? { ok: 0, fail: 0, unknown: 0, pending: 0 };
    counts.set(op.op, c);
    c[op.outcome]++;
    total[op.outcome]++;
  }
  const line = (name: string, c: Record<CompletedOp['outcome'], number>) => [
    name,
    ...outcomes.map((o) => c[o]),
    outcomes.reduce((s, o) => s + c[o], 0),
  ];
  return table(
    ['op', ...outcomes, 'total'],
    [...[...counts.keys()].sort(byOpKindOrder).map((k) => line(k, counts.get(k)!)), line('total', total)],
  );
}

/** Writes `report.md` and `latency.svg` into `dir` (created if missing) and returns their paths. */
export function writeReport(dir: string, input: ReportInput): { markdown: string; svg: string } {
  mkdirSync(dir, { recursive: true });
  const markdown = join(dir, REPORT_FILE);
  const svg = join(dir, SVG_FILE);
  const ops = completedOps(input.history);
  writeFileSync(
    svg,
    renderSvg({ ops, windows: faultWindows(input.history), start: input.run.startedAt, end: input.run.endedAt }),
  );
  writeFileSync(markdown, renderReport({ ...input, svgFile: SVG_FILE }));
  return { markdown, svg };
}

/** The liveness-after-heal section's text. */
function healLivenessText(h: HealLiveness | undefined, at: (t: number) => string): string {
  if (h === undefined) return 'Not checked: the run did not reach the final heal.';
  const s = (n: number) => (n / 1000).toFixed(1);
  const head =
    `Healed at ${at(h.healedAt)} s; ${h.rounds} round${h.rounds === 1 ? '' : 's'} of membership views read after it; ` +
    `bound ${s(h.boundMs)} s for every one of the ${h.nodes.size} nodes to see every other \`alive\`.`;
  if (h.ms !== undefined && h.ms <= h.boundMs)
    return `${head}\n\nPASS: every node alive on every other ${s(h.ms)} s after the heal.`;
  const when = h.ms === undefined ? 'not within the reads' : `only after ${s(h.ms)} s`;
  return `${head}\n\nFAIL (${when}). The last round within the bound:\n\n${h.missing.map((m) => `- ${cell(m)}`).join('\n')}`;
}

function convergedCell(c: Convergence): string {
  if (c.ms !== undefined) return ms(c.ms);
  return c.interruptedAt === undefined
    ? 'not converged'
    : `not before the next fault (${((c.interruptedAt - c.healedAt) / 1000).toFixed(1)} s later)`;
}
