/**
 * When nodes of a chaos run were down or cut off from each other, derived from the history: fault windows that
 * stop a node (kill, pause, wipe, kill-after-accept), the gaps between a process exit and its next start, and
 * cuts: partitions and the packet cuts of `--net netns` (nodes in different groups; a one-way cut separates its
 * groups both ways, a bridge node is in no group and separated from nobody). The checker excuses a node for what it could not have known while it
 * was separated from a token's signer, and for `settleMs` after (time to sync what it missed).
 */
import { faultWindows, type ExitEvent, type FaultEvent, type HistoryEvent } from './history.js';

/** A closed span of harness time. */
export interface Interval {
  readonly from: number;
  readonly to: number;
}

/** A fault window; `to` is Infinity when it never ended. */
interface Window extends Interval {
  readonly kind: FaultEvent['kind'];
  readonly nodes: readonly string[];
  readonly groups: ReadonlyArray<readonly string[]>;
}

const DOWN_KINDS: ReadonlySet<FaultEvent['kind']> = new Set(['kill', 'pause', 'wipe', 'kill-after-accept']);
/** Windows that separate their groups from each other (both ways, whatever way the packets were dropped). */
const CUT_KINDS: ReadonlySet<FaultEvent['kind']> = new Set(['partition', 'netdrop', 'oneway', 'bridge']);

function overlaps(iv: Interval, from: number, to: number, extendBy = 0): boolean {
  return iv.from <= to && iv.to + extendBy >= from;
}

function mergeIntervals(list: readonly Interval[]): Interval[] {
  const merged: Interval[] = [];
  for (const iv of [...list].sort((a, b) => a.from - b.from)) {
    const last = merged.at(-1);
    if (last !== undefined && iv.from <= last.to)
      merged[merged.length - 1] = { from: last.from, to: Math.max(last.to, iv.to) };
    else merged.push(iv);
  }
  return merged;
}

function windowsOf(history: readonly HistoryEvent[]): Window[] {
  return faultWindows(history).map((w) => ({
    kind: w.kind,
    nodes: w.nodes,
    groups: w.groups ?? [],
    from: w.start,
    to: w.end ?? Infinity,
  }));
}

/** Spans between a node's exit and its next start (to Infinity when it never started again). */
function exitGaps(history: readonly HistoryEvent[], node: string): Interval[] {
  const starts = history.filter((e) => e.type === 'start' && e.node === node).map((e) => e.time);
  return history
    .filter((e): e is ExitEvent => e.type === 'exit' && e.node === node)
    .map((e) => ({ from: e.time, to: Math.min(...starts.filter((t) => t > e.time)) }));
}

function splitByPartition(window: Window, a: string, b: string): boolean {
  const sideA = window.groups.findIndex((g) => g.includes(a));
  const sideB = window.groups.findIndex((g) => g.includes(b));
  return sideA !== -1 && sideB !== -1 && sideA !== sideB;
}

/** When nodes were down or cut off from each other, derived from the fault windows and the process exits. */
export class FaultModel {
  readonly #settleMs: number;
  readonly #history: readonly HistoryEvent[];
  readonly #windows: readonly Window[];
  readonly #down = new Map<string, readonly Interval[]>();
  readonly #separations = new Map<string, readonly Interval[]>();

  constructor(history: readonly HistoryEvent[], settleMs: number) {
    this.#history = history;
    this.#settleMs = settleMs;
    this.#windows = windowsOf(history);
  }

  /** Whether a separation of `a` and `b`, extended by the settle time, overlaps `[from, to]`. */
  disturbed(a: string, b: string, from: number, to: number): boolean {
    return this.#separated(a, b).some((iv) => overlaps(iv, from, to, this.#settleMs));
  }

  /** Whether a wipe of `node`, extended by the settle time, overlaps `[from, to]`. */
  wipedIn(node: string, from: number, to: number): boolean {
    return this.#windows.some(
      (w) => w.kind === 'wipe' && w.nodes.includes(node) && overlaps(w, from, to, this.#settleMs),
    );
  }

  #downIntervals(node: string): readonly Interval[] {
    let down = this.#down.get(node);
    if (down === undefined) {
      const faults = this.#windows.filter((w) => DOWN_KINDS.has(w.kind) && w.nodes.includes(node));
      down = [...faults, ...exitGaps(this.#history, node)];
      this.#down.set(node, down);
    }
    return down;
  }

  #separated(a: string, b: string): readonly Interval[] {
    const key = a < b ? `${a}\n${b}` : `${b}\n${a}`;
    let separated = this.#separations.get(key);
    if (separated === undefined) {
      const cuts = this.#windows.filter((w) => CUT_KINDS.has(w.kind) && splitByPartition(w, a, b));
      separated = mergeIntervals([...this.#downIntervals(a), ...this.#downIntervals(b), ...cuts]);
      this.#separations.set(key, separated);
    }
    return separated;
  }
}
