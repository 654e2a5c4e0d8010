/**
 * The fault schedule: a list of fault windows drawn from the run's seed alone, so the same seed and options give
 * the same schedule. Windows follow each other with a quiet gap between them (one fault at a time, so each
 * window's availability and the convergence after each heal can be told apart). What only the running cluster
 * knows (which nodes hold a given user's secret) is resolved when the window opens.
 */
import type { Random } from './random.js';

/** Faults that run on any machine: signals to the node processes and the nodes' fault-injection hook. */
export const HOOK_FAULT_NAMES = ['kill', 'restart', 'pause', 'partition', 'skew', 'commit-kill', 'wipe'] as const;
/** Packet cuts with iptables between the nodes' network namespaces (`net-cuts.ts`): only with `--net netns`. */
export const NET_FAULT_NAMES = ['netdrop', 'oneway', 'bridge'] as const;
/** The faults `--faults` takes. */
export const FAULT_NAMES = [...HOOK_FAULT_NAMES, ...NET_FAULT_NAMES] as const;
export type FaultName = (typeof FAULT_NAMES)[number];
export type NetFaultName = (typeof NET_FAULT_NAMES)[number];

/** Whether `name` cuts packets (and so needs `--net netns`). */
export function isNetFault(name: FaultName): name is NetFaultName {
  return (NET_FAULT_NAMES as readonly string[]).includes(name);
}

/** Quiet time at the start, before the first fault. */
export const WARM_UP_MS = 4_000;
/** Quiet time between two windows: at least, at most. */
const GAP_MS = [2_000, 4_000] as const;
/** The least quiet time between two windows, also when one ran late. */
export const MIN_GAP_MS = GAP_MS[0];
/** Length of a window: at least, at most (a pause is always longer than the default 2 s dead-after). */
const WINDOW_MS = [4_000, 9_000] as const;
/** Clock offset of a skew window: at least, at most (either way; within the chaos profile's `clockSkewMs`). */
const SKEW_MS = [1_500, 4_000] as const;

/** One planned fault window. Nodes are indices into the cluster (0 is `n1`). */
export interface PlannedFault {
  readonly n: number;
  /** Start, in ms after the workload started. */
  readonly at: number;
  readonly durationMs: number;
  readonly name: FaultName;
  /**
   * `kill`: `random`, `seed` (one of the seed nodes) or `replicas` (a majority of one user's replicas, resolved
   * when the window opens); `partition`: `isolate` (one node alone), `split` (a minority and a majority) or
   * `bridge` (two sides and one node that still talks to both); `netdrop`: `isolate` or `split` as for a
   * partition; `oneway`: `one-to-rest`, `rest-to-one` or `split` (which side's packets are dropped); `bridge`:
   * `bridge`; the others: `one`.
   */
  readonly variant: string;
  readonly targets: readonly number[];
  /**
   * `partition`, `netdrop`, `bridge`: the sides (a bridge node is in neither); `oneway`: `[from, to]`, the packets
   * of the first group to the second are dropped.
   */
  readonly groups?: ReadonlyArray<readonly number[]>;
  /** `skew`: the clock offset. */
  readonly offsetMs?: number;
  /** `kill` of `replicas`: which of the users with a secret (an index, modulo their count). */
  readonly pick?: number;
}

/** Number of seed nodes (`n1`, `n2`): every node is started with both as seeds. */
export const SEED_NODES = 2;

/** The schedule for a run of `durationMs` with `nodes` nodes and the chosen faults; at most one wipe. */
export function planFaults(
  random: Random,
  o: { nodes: number; durationMs: number; faults: readonly FaultName[] },
): PlannedFault[] {
  const plan: PlannedFault[] = [];
  if (o.faults.length === 0) return plan;
  let at = WARM_UP_MS;
  for (;;) {
    const durationMs = random.between(...WINDOW_MS);
    if (at + durationMs > o.durationMs - GAP_MS[0]) return plan;
    const allowed = o.faults.filter((f) => f !== 'wipe' || !plan.some((p) => p.name === 'wipe'));
    plan.push(windowOf(random, plan.length + 1, at, durationMs, random.pick(allowed), o.nodes));
    at += durationMs + random.between(...GAP_MS);
  }
}

function windowOf(
  random: Random,
  n: number,
  at: number,
  durationMs: number,
  name: FaultName,
  nodes: number,
): PlannedFault {
  const base = { n, at, durationMs, name };
  const one = [random.int(nodes)];
  switch (name) {
    case 'kill': {
      const variant = random.pick(['random', 'seed', 'replicas']);
      if (variant === 'replicas') return { ...base, variant, targets: [], pick: random.int(1_000) };
      return { ...base, variant, targets: variant === 'seed' ? [random.int(Math.min(SEED_NODES, nodes))] : one };
    }
    case 'partition':
      return partitionOf(random, base, nodes);
    case 'netdrop':
      return netDropOf(random, base, nodes);
    case 'oneway':
      return oneWayOf(random, base, nodes);
    case 'bridge':
      return bridgeOf(random, base, nodes);
    case 'skew':
      return {
        ...base,
        variant: 'one',
        targets: one,
        offsetMs: (random.next() < 0.5 ? -1 : 1) * random.between(...SKEW_MS),
      };
    case 'commit-kill':
      return { ...base, variant: 'one', targets: [], pick: random.int(1_000) };
    default:
      return { ...base, variant: 'one', targets: one };
  }
}

type WindowBase = { n: number; at: number; durationMs: number; name: FaultName };

function partitionOf(random: Random, base: WindowBase, nodes: number): PlannedFault {
  const order = random.shuffle([...Array(nodes).keys()]);
  const variant = nodes >= 3 ? random.pick(['isolate', 'split', 'bridge']) : 'isolate';
  if (variant === 'isolate') return { ...base, variant, targets: order, groups: [order.slice(0, 1), order.slice(1)] };
  if (variant === 'split') return { ...base, variant, targets: order, groups: split(order) };
  return { ...base, variant, targets: order, groups: bridged(order) };
}

/** A minority (at least one node) and a majority of a shuffled order. */
function split(order: readonly number[]): number[][] {
  const minority = Math.max(1, Math.floor((order.length - 1) / 2));
  return [order.slice(0, minority), order.slice(minority)];
}

/** The bridge (first in the shuffled order) is in no group: it talks to both sides, the sides not to each other. */
function bridged(order: readonly number[]): number[][] {
  const half = Math.ceil((order.length - 1) / 2);
  return [order.slice(1, 1 + half), order.slice(1 + half)];
}

function netDropOf(random: Random, base: WindowBase, nodes: number): PlannedFault {
  const order = random.shuffle([...Array(nodes).keys()]);
  const variant = random.pick(['isolate', 'split']);
  return {
    ...base,
    variant,
    targets: order,
    groups: variant === 'isolate' ? [order.slice(0, 1), order.slice(1)] : split(order),
  };
}

function oneWayOf(random: Random, base: WindowBase, nodes: number): PlannedFault {
  const order = random.shuffle([...Array(nodes).keys()]);
  const variant = random.pick(['one-to-rest', 'rest-to-one', 'split']);
  const [small, large] = variant === 'split' ? split(order) : [order.slice(0, 1), order.slice(1)];
  return { ...base, variant, targets: order, groups: variant === 'rest-to-one' ? [large!, small!] : [small!, large!] };
}

function bridgeOf(random: Random, base: WindowBase, nodes: number): PlannedFault {
  const order = random.shuffle([...Array(nodes).keys()]);
  return { ...base, variant: 'bridge', targets: order, groups: bridged(order) };
}
