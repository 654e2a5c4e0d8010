/**
 * Members joining the cluster map, in the audit log (`member:add`, best effort). Every node records the joins it
 * learns of from a map change; the first map a node knows (genesis, or the map it loads at start) records nothing,
 * so a restart does not record every member again. Removals are recorded where the operator asks for them.
 */
import type { AuditLog } from '../audit/audit-log.js';
import type { ClusterMap } from '../cluster-map/cluster-map.js';

/** What is read of the map keeper: its map changes. */
export interface MapChanges {
  on(event: 'map:changed', listener: (map: ClusterMap, previous: ClusterMap | undefined) => void): unknown;
}

/** Records each member that appears in a map change after an earlier map. */
export function recordJoins(keeper: MapChanges, audit: AuditLog): void {
  keeper.on('map:changed', (map, previous) => {
    if (!previous) return;
    const known = new Set(previous.members.map((m) => m.nodeId));
    for (const member of map.members)
      if (!known.has(member.nodeId)) void audit.record({ event: 'member:add', member: member.nodeId });
  });
}
