/**
 * The packet cuts of `--net netns`, as data: a cut's shape, drawn by the schedule, and the iptables commands that
 * make it, run inside the nodes' network namespaces. Pure: no I/O; `netns-network.ts` runs the commands.
 *
 * Every rule is an `INPUT` drop at the receiver (`-A INPUT -s <sender> -j DROP`). The sender's packets leave it as
 * usual and vanish on the way: no reset, no ICMP error, no local error either (an `OUTPUT` drop would hand the
 * sender `EPERM` at once, which is a fast failure, not a silent one). A node then learns of a cut only by its
 * own timeouts, as across a real broken link. Healing flushes every namespace's `INPUT` chain; the namespaces
 * belong to the run, so no other rule lives there.
 *
 * - `drop`: two groups, cut both ways (each side drops what comes from the other).
 * - `one-way`: `from`'s packets to `to` are dropped, `to`'s packets to `from` are not. TCP needs both ways, so
 *   no new connection forms either way; on an open one, `to`'s data still reaches `from` for a while.
 * - `bridge`: two sides cut from each other both ways; the bridge node is in neither and reaches both.
 */
import type { PlannedFault } from './schedule.js';

/** A cut's shape; nodes are indices into the cluster (0 is `n1`). */
export type NetCut =
  | { readonly shape: 'drop'; readonly groups: readonly [readonly number[], readonly number[]] }
  | { readonly shape: 'one-way'; readonly from: readonly number[]; readonly to: readonly number[] }
  | {
      readonly shape: 'bridge';
      readonly sides: readonly [readonly number[], readonly number[]];
      readonly bridge: number;
    };

/** One iptables invocation (without the program name) to run in node `node`'s namespace. */
export interface IptablesCommand {
  readonly node: number;
  readonly args: readonly string[];
}

/** Makes every iptables call wait for the xtables lock instead of failing (the legacy backend takes one). */
const WAIT = '-w';

/** The cut a planned `netdrop`, `oneway` or `bridge` window makes. */
export function netCutOf(fault: Pick<PlannedFault, 'name' | 'groups' | 'targets'>): NetCut {
  const [a = [], b = []] = fault.groups ?? [];
  switch (fault.name) {
    case 'netdrop':
      return { shape: 'drop', groups: [a, b] };
    case 'oneway':
      return { shape: 'one-way', from: a, to: b };
    case 'bridge': {
      const bridge = fault.targets.find((i) => !a.includes(i) && !b.includes(i));
      if (bridge === undefined) throw new Error('a bridge window needs a node on neither side');
      return { shape: 'bridge', sides: [a, b], bridge };
    }
    default:
      throw new Error(`${fault.name} is not a packet cut`);
  }
}

/** Drops at `receiver` everything that comes from `sender`. */
function dropFrom(receiver: number, sender: number, address: (i: number) => string): IptablesCommand {
  return { node: receiver, args: [WAIT, '-A', 'INPUT', '-s', address(sender), '-j', 'DROP'] };
}

/** Both ways between every node of `a` and every node of `b`. */
function bothWays(a: readonly number[], b: readonly number[], address: (i: number) => string): IptablesCommand[] {
  return [
    ...a.flatMap((x) => b.map((y) => dropFrom(x, y, address))),
    ...b.flatMap((y) => a.map((x) => dropFrom(y, x, address))),
  ];
}

/**
 * The iptables commands that make `cut`, given each node's address.
 * @throws Error when a node is on both sides, or the bridge node on either (a plan the schedule never draws).
 */
export function cutCommands(cut: NetCut, address: (i: number) => string): IptablesCommand[] {
  const [a, b] = cut.shape === 'drop' ? cut.groups : cut.shape === 'one-way' ? [cut.from, cut.to] : cut.sides;
  const overlap = a.filter((i) => b.includes(i));
  if (overlap.length > 0) throw new Error(`node ${overlap.join(',')} is on both sides of a ${cut.shape} cut`);
  switch (cut.shape) {
    case 'drop':
      return bothWays(a, b, address);
    case 'one-way':
      return b.flatMap((receiver) => a.map((sender) => dropFrom(receiver, sender, address)));
    case 'bridge':
      if (a.includes(cut.bridge) || b.includes(cut.bridge))
        throw new Error(`the bridge node ${cut.bridge} is on a side of its own cut`);
      return bothWays(a, b, address);
  }
}

/** The commands that heal every cut: each of `nodes` namespaces' `INPUT` chain flushed. */
export function healCommands(nodes: number): IptablesCommand[] {
  return Array.from({ length: nodes }, (_, node) => ({ node, args: [WAIT, '-F', 'INPUT'] }));
}
