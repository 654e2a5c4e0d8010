/**
 * Who may ask what of this node's register and coordination protocols (DESIGN §11), given the sender as the
 * membership identified it (the node its peer is bound to) and this node's cluster map:
 * - a register request: a member of the map of the request's epoch (at epoch 0, before genesis, any identified
 *   node: only the genesis map's register is open then);
 * - asking for the map, or to join as itself: any identified node;
 * - pushing a map: a member, or anyone to a node that has no map yet;
 * - hand-overs, forwarded operations and word of a restored data directory: members only.
 */
import type { ClusterMap } from '../cluster-map/cluster-map.js';
import type { CoordRequest } from './coord.js';

/** Whether `nodeId` is a member (any role) of `map`, and `map` is of `epoch` when one is named. */
export function isMember(map: ClusterMap | undefined, nodeId: string, epoch?: number): boolean {
  return (
    map !== undefined && (epoch === undefined || map.epoch === epoch) && map.members.some((m) => m.nodeId === nodeId)
  );
}

/** Whether `nodeId` may send register requests in `epoch`. */
export function mayPropose(map: ClusterMap | undefined, nodeId: string, epoch: number): boolean {
  return epoch === 0 || isMember(map, nodeId, epoch);
}

/** Whether `from` may send coordination `request`. */
export function mayAsk(map: ClusterMap | undefined, from: string, request: CoordRequest): boolean {
  switch (request.t) {
    case 'get-map':
    case 'join':
      return true;
    case 'push-map':
      return map === undefined || isMember(map, from);
    default:
      return isMember(map, from);
  }
}
