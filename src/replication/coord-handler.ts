/**
 * What a node answers to the coordination requests of its peers (`/keymesh/<clusterId>/coord/1`, `coord.ts`):
 * the cluster map (get, push), a join, a hand-over of the keys it owns, the proof that a member's data directory was
 * restored, a management-key step, a forwarded register operation, and a page of committed values for a snapshot.
 * Who may send which request is decided before this (`admission.ts`); here each is carried out with the parts of
 * the agreement role it needs. Map registers are never open to forwarded operations.
 */
import type { MapChanges } from '../cluster-map/map-changes.js';
import type { MapKeeper } from '../cluster-map/map-keeper.js';
import { decodeMap, encodeMap, withJoining, type ClusterMap } from '../cluster-map/cluster-map.js';
import { KeymeshError } from '../errors.js';
import type { ManagementKeyReport, ManagementKeyRequest } from '../management-key/messages.js';
import type { SealedAcceptorStore } from '../register/acceptor-store.js';
import type { CoordReply, CoordRequest } from './coord.js';
import { MAP_PREFIX, type RegisterOperations } from './operations.js';
import type { RestoredDirectories } from './restored.js';

/** The parts of the agreement role a coordination request may reach. */
export interface CoordContext {
  readonly nodeId: string;
  readonly keeper: MapKeeper;
  readonly acceptorStore: SealedAcceptorStore;
  readonly restoredDirs: RestoredDirectories;
  readonly operations: RegisterOperations;
  /** The map changes, once the cluster started. @throws KeymeshError `ERR_UNAVAILABLE` before. */
  changes(): MapChanges;
  /** The map this node is a member of. @throws KeymeshError `ERR_UNAVAILABLE` when it is none's. */
  memberMap(): ClusterMap;
  readonly managementKeys?: (request: ManagementKeyRequest, from: string) => Promise<ManagementKeyReport>;
}

/** Carries out `request` from member `from` (already admitted). */
export async function handleCoord(request: CoordRequest, from: string, ctx: CoordContext): Promise<CoordReply> {
  switch (request.t) {
    case 'get-map': {
      const map = ctx.keeper.map;
      return { t: 'map', ...(map ? { map: encodeMap(map) } : {}) };
    }
    case 'push-map':
      await ctx.keeper.adopt(decodeMap(request.map), { nodeId: from, name: from });
      return { t: 'ok' };
    case 'join': {
      const map = ctx.memberMap();
      if (!map.members.some((m) => m.nodeId === request.nodeId))
        await ctx.changes().change(map, withJoining(map, request.nodeId, request.name));
      return { t: 'ok' };
    }
    case 'handover':
      return { t: 'handed-over', keys: await ctx.changes().handOver(request.epoch, from) };
    case 'restored':
      await ctx.restoredDirs.conclude(request.proof);
      return { t: 'ok' };
    case 'mk': {
      if (!ctx.managementKeys) throw new KeymeshError('ERR_UNAVAILABLE', 'this node takes no management-key steps');
      return { t: 'mk', report: await ctx.managementKeys(request, from) };
    }
    case 'op': {
      if (request.key.startsWith(MAP_PREFIX))
        throw new KeymeshError('ERR_INVALID_REQUEST', 'map registers are not open to operations');
      const outcome = await ctx.operations.run(request.op, request.key, request.candidate, true);
      return { t: 'value', ...(outcome.value ? { value: outcome.value } : {}), roundTrips: outcome.roundTrips };
    }
    case 'dump':
      return (await import('../snapshot/dump-page.js')).dumpPage(
        { store: ctx.acceptorStore, placement: ctx.keeper.placement, nodeId: ctx.nodeId },
        request,
      );
  }
}
