/**
 * The two decisions of the cluster map's background loop, as pure functions of what a node knows.
 */
import type { ClusterMap } from '../cluster-map/cluster-map.js';

export interface Candidate {
  readonly nodeId: string;
  readonly name: string;
}

/**
 * Genesis: the candidates for map 1 when `bootstrapExpect` nodes without a map (this one included) are live, as
 * the lowest node ids; undefined while too few have met or when this node is not among them.
 */
export function genesisCandidates(
  self: Candidate,
  unmappedPeers: readonly Candidate[],
  bootstrapExpect: number,
): Candidate[] | undefined {
  const all = [self, ...unmappedPeers].sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  if (all.length < bootstrapExpect) return undefined;
  const candidates = all.slice(0, bootstrapExpect);
  return candidates.some((c) => c.nodeId === self.nodeId) ? candidates : undefined;
}

/** What a member does about a transitional map. */
export type TransitionStep =
  | { readonly kind: 'not-driver' }
  | { readonly kind: 'wait'; readonly dead: string[] }
  | { readonly kind: 'hand-over'; readonly ask: string[] };

/**
 * The driver of a transitional map is the joining node, or for a removal the lowest live normal member (any member
 * once `overdue`). It asks every live owner (normal or leaving member) to hand over. Owners it believes dead are
 * skipped only while there are at most `(replicationFactor − 1) / 2` of them, so each replica set keeps a live
 * majority holding every value chosen before the change; with more, the hand-over waits. The failure detector
 * only makes the driver wait: it never changes the map.
 */
export function transitionStep(
  map: ClusterMap,
  selfId: string,
  live: ReadonlySet<string>,
  replicationFactor: number,
  overdue: boolean,
): TransitionStep {
  const self = map.members.find((m) => m.nodeId === selfId);
  const owners = map.members
    .filter((m) => m.role !== 'joining')
    .map((m) => m.nodeId)
    .sort();
  const normals = map.members
    .filter((m) => m.role === 'normal')
    .map((m) => m.nodeId)
    .sort();
  const joining = map.members.some((m) => m.role === 'joining');
  const driver = joining ? self?.role === 'joining' : normals.find((id) => live.has(id)) === selfId;
  if (!driver && !overdue) return { kind: 'not-driver' };
  const dead = owners.filter((id) => !live.has(id));
  if (dead.length > Math.floor((replicationFactor - 1) / 2)) return { kind: 'wait', dead };
  return { kind: 'hand-over', ask: owners.filter((id) => live.has(id)) };
}
