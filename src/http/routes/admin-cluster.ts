import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { KeymeshError } from '../../errors.js';
import { clusterSnapshot } from '../cluster-view.js';
import type { HttpDeps } from '../deps.js';
import { recordOperatorChange } from '../operator-audit.js';
import { parseInput } from '../validate.js';

const memberParams = z.strictObject({ id: z.string().min(1).max(64) });

/**
 * `GET /v1/cluster` (`admin`): members with state, last heartbeat and key-set digest; whether digests agree; the
 * cluster map with its epoch, each map member's role and ring share, and any conflicting map heard of.
 * `POST /v1/cluster/members/{id}/remove` (`admin`): an operator removal (by node id or name).
 */
export function registerAdminClusterRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const admin = deps.auth.requires('admin');

  app.get('/v1/cluster', { preHandler: admin }, async (_req, reply) => {
    const view = clusterSnapshot(deps);
    return reply.header('cache-control', 'no-store').send({
      node: deps.nodeId,
      clusterId: deps.config.clusterId,
      peerId: deps.cluster.peerId,
      listen: deps.cluster.listenAddrs,
      keySetDigest: view.digest,
      digestsAgree: view.digestsAgree,
      members: view.members,
      status: view.status,
      epoch: view.epoch,
      map: view.map,
      conflicts: view.conflicts,
    });
  });

  app.post('/v1/cluster/members/:id/remove', { preHandler: admin }, async (req, reply) => {
    const { id } = parseInput(memberParams, req.params, 'path');
    const agreement = deps.agreement;
    const map = agreement?.view().map;
    if (!agreement || !map) throw new KeymeshError('ERR_UNAVAILABLE', 'no cluster map yet');
    const member = map.members.find((m) => m.nodeId === id || m.name === id);
    if (!member) throw new KeymeshError('ERR_NOT_FOUND', `no member ${id} in cluster map ${map.epoch}`);
    await recordOperatorChange(deps, req, (operator) => ({ event: 'member:remove', operator, member: member.nodeId }));
    const next = await agreement.remove(member.nodeId);
    return reply.header('cache-control', 'no-store').send({ removing: member.nodeId, epoch: next.epoch, map: next });
  });
}
