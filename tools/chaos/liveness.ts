/**
 * Liveness figures of a chaos run, computed from its history alone: the fault windows, every operation with its
 * outcome and latency, availability per fault window, per-kind latency percentiles, and how long the nodes' JWKS
 * took to agree again after each fault healed. The checker decides whether the run was correct; these figures
 * say how available and how quick it was while being correct.
 *
 * Convergence is read from the JWKS snapshots, which the runner takes of every node about once a second, all nodes
 * within about 100 ms. Snapshots are grouped into rounds in time order: a round opens with a snapshot and takes every
 * later snapshot of a node it does not hold yet, taken less than `ROUND_WINDOW_MS` after its first. A round has
 * converged when every node in it answered, it holds every node that answered in the last round before the fault
 * started (or, when there is none, every node that answered at any time in the run), and all its kid sets are equal.
 * The convergence time of a healed window is the first converged round that opens at or after the heal, timed by
 * the round's last snapshot (the moment the agreement was seen in full).
 */
import {
  completedOps,
  faultWindows,
  type CompletedOp,
  type FaultKind,
  type FaultWindow,
  type JwksSnapshot,
  type OpKind,
} from './history.js';

export { completedOps, faultWindows, type CompletedOp, type FaultWindow };

/** Snapshots taken less than this long after a round's first one belong to that round. Default is 500 (0.5 s). */
export const ROUND_WINDOW_MS = 500;

/** The operation kinds in the order tables and legends list them. */
export const OP_KIND_ORDER: readonly OpKind[] = [
  'secret',
  'issue',
  'verify',
  'sct-create',
  'sct-validate',
  'revoke',
  'rotate',
  'key-revoke',
];

/** The nodes a window acts on, as text: a partition's groups joined by ` | `, otherwise the nodes joined by `,`. */
export function windowNodes(w: FaultWindow): string {
  return w.groups !== undefined && w.groups.length > 0
    ? w.groups.map((g) => g.join(',')).join(' | ')
    : w.nodes.join(',');
}

/** A window's label in tables and the picture, e.g. `#3 partition n1,n2 | n3,n4,n5`. */
export function windowLabel(w: FaultWindow): string {
  return `#${w.id} ${w.kind} ${windowNodes(w)}`;
}

/** Latency of a completed operation in ms; undefined while pending. */
export function latencyMs(op: CompletedOp): number | undefined {
  return op.doneAt === undefined ? undefined : op.doneAt - op.invokedAt;
}

/** Outcomes of the operations invoked in one stretch of the run. */
export interface WindowAvailability {
  /** `#3 partition n1,n2 | n3,n4,n5`, `no fault` or `final read-back`. */
  readonly label: string;
  readonly start: number;
  readonly end: number;
  readonly ok: number;
  readonly fail: number;
  /** Unknown outcomes, pending operations included. */
  readonly unknown: number;
  /** ok / (ok + fail + unknown); undefined when no operation fell in the stretch. */
  readonly availability: number | undefined;
}

/**
 * Availability per fault window. An operation counts in every window open at its invoke time (a window without an
 * end stays open until `runEnd`), in `no fault` when none was open, and final read-back operations only in their
 * own last row `final read-back` (left out when there are none). Pending operations count as unknown. The first
 * row is `no fault`, spanning `runStart` to `runEnd`; the windows follow in start order.
 */
export function availabilityByWindow(
  ops: readonly CompletedOp[],
  windows: readonly FaultWindow[],
  runStart: number,
  runEnd: number,
): WindowAvailability[] {
  const tally = () => ({ ok: 0, fail: 0, unknown: 0 });
  type Tally = ReturnType<typeof tally>;
  const add = (t: Tally, op: CompletedOp) => {
    if (op.outcome === 'ok') t.ok++;
    else if (op.outcome === 'fail') t.fail++;
    else t.unknown++;
  };
  const row = (label: string, start: number, end: number, t: Tally): WindowAvailability => {
    const all = t.ok + t.fail + t.unknown;
    return { label, start, end, ...t, availability: all === 0 ? undefined : t.ok / all };
  };
  const calm = tally();
  const perWindow = windows.map(tally);
  const finals: CompletedOp[] = [];
  for (const op of ops) {
    if (op.final === true) {
      finals.push(op);
      continue;
    }
    let open = false;
    windows.forEach((w, i) => {
      if (op.invokedAt >= w.start && op.invokedAt < (w.end ?? runEnd)) {
        add(perWindow[i]!, op);
        open = true;
      }
    });
    if (!open) add(calm, op);
  }
  const rows = [
    row('no fault', runStart, runEnd, calm),
    ...windows.map((w, i) => row(windowLabel(w), w.start, w.end ?? runEnd, perWindow[i]!)),
  ];
  if (finals.length > 0) {
    const t = tally();
    for (const op of finals) add(t, op);
    const start = Math.min(...finals.map((op) => op.invokedAt));
    const end = Math.max(...finals.map((op) => op.doneAt ?? runEnd));
    rows.push(row('final read-back', start, end, t));
  }
  return rows;
}

/** How long the nodes' JWKS took to agree after one fault window healed. */
export interface Convergence {
  readonly windowId: number;
  readonly kind: FaultKind;
  readonly healedAt: number;
  /** The last snapshot of the first converged round after the heal; undefined when no later round converged. */
  readonly convergedAt: number | undefined;
  /** `convergedAt - healedAt`. */
  readonly ms: number | undefined;
  /** When the next fault window opened before the nodes had converged. */
  readonly interruptedAt?: number;
}

/** Snapshots of (about) every node taken at about the same moment. */
interface Round {
  readonly first: number;
  last: number;
  readonly snapshots: JwksSnapshot[];
}

/** Groups snapshots into rounds as the top comment describes. */
function rounds(snapshots: readonly JwksSnapshot[]): Round[] {
  const out: Round[] = [];
  let current: Round | undefined;
  for (const s of [...snapshots].sort((a, b) => a.time - b.time)) {
    if (
      current === undefined ||
      s.time - current.first >= ROUND_WINDOW_MS ||
      current.snapshots.some((x) => x.node === s.node)
    ) {
      current = { first: s.time, last: s.time, snapshots: [] };
      out.push(current);
    }
    current.snapshots.push(s);
    current.last = s.time;
  }
  return out;
}

const answered = (r: Round) => r.snapshots.filter((s) => s.kids !== null).map((s) => s.node);

function converged(r: Round, expected: ReadonlySet<string>): boolean {
  if (r.snapshots.some((s) => s.kids === null)) return false;
  const nodes = new Set(r.snapshots.map((s) => s.node));
  for (const n of expected) if (!nodes.has(n)) return false;
  const sets = r.snapshots.map((s) => [...new Set(s.kids)].sort().join('\n'));
  return sets.every((k) => k === sets[0]);
}

/** The convergence time after each ended window, in window order; windows that never ended are left out. */
export function convergenceAfterHeals(
  windows: readonly FaultWindow[],
  snapshots: readonly JwksSnapshot[],
): Convergence[] {
  const all = rounds(snapshots);
  const everAnswered = new Set(all.flatMap(answered));
  const out: Convergence[] = [];
  for (const w of windows) {
    if (w.end === undefined) continue;
    const healedAt = w.end;
    const before = all.filter((r) => r.last < w.start && answered(r).length > 0).at(-1);
    const expected = before === undefined ? everAnswered : new Set(answered(before));
    // only until the next window opens: convergence after that would be the next fault's to report
    const next = windows.find((o) => o.start >= healedAt && o.id !== w.id)?.start ?? Infinity;
    const round = all.find((r) => r.first >= healedAt && r.last < next && converged(r, expected));
    const convergedAt = round?.last;
    out.push({
      windowId: w.id,
      kind: w.kind,
      healedAt,
      convergedAt,
      ms: convergedAt === undefined ? undefined : convergedAt - healedAt,
      ...(round === undefined && next !== Infinity ? { interruptedAt: next } : {}),
    });
  }
  return out;
}

/** Nearest-rank percentile (`p` in 0..100) of a non-empty list: the smallest value with ≥ p% of values at or below it. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('percentile of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  // (p × n) / 100, not (p / 100) × n: the latter rounds up past an exact rank for some p (7 % of 100 is 7.000000000000001)
  return sorted[Math.max(0, Math.ceil((p * sorted.length) / 100) - 1)]!;
}

/** Latency of one operation kind over its `ok` operations, in ms. */
export interface OpLatency {
  readonly op: OpKind;
  /** How many operations of the kind completed `ok`. */
  readonly count: number;
  /** Nearest-rank percentiles of `doneAt - invokedAt`; undefined when none completed `ok`. */
  readonly p50Ms: number | undefined;
  readonly p99Ms: number | undefined;
}

/** Sorts operation kinds into `OP_KIND_ORDER`, kinds it does not know last in name order. */
export function byOpKindOrder(a: OpKind, b: OpKind): number {
  const rank = (k: OpKind) => {
    const i = OP_KIND_ORDER.indexOf(k);
    return i === -1 ? OP_KIND_ORDER.length : i;
  };
  return rank(a) - rank(b) || a.localeCompare(b);
}

/** p50 and p99 latency per operation kind over `ok` operations; one entry per kind present in `ops`. */
export function latencyByOp(ops: readonly CompletedOp[]): OpLatency[] {
  const byKind = new Map<OpKind, number[]>();
  for (const op of ops) {
    const list = byKind.get(op.op) ?? [];
    byKind.set(op.op, list);
    const ms = latencyMs(op);
    if (op.outcome === 'ok' && ms !== undefined) list.push(ms);
  }
  return [...byKind.keys()].sort(byOpKindOrder).map((op) => {
    const list = byKind.get(op) ?? [];
    return list.length === 0
      ? { op, count: 0, p50Ms: undefined, p99Ms: undefined }
      : { op, count: list.length, p50Ms: percentile(list, 50), p99Ms: percentile(list, 99) };
  });
}
