import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../deps.js';

/** `GET /v1/cluster` (`admin`): members with state, last heartbeat and key-set digest; whether digests agree. */
export function registerAdminClusterRoutes(app: FastifyInstance, deps: HttpDeps): void {
  app.get('/v1/cluster', async (req, reply) => {
    deps.auth.authorize(req.headers.authorization, 'admin');
    const members = deps.cluster.members();
    const live = members.filter((m) => m.state !== 'dead');
    const digest = deps.keyring.digest();
    return reply.header('cache-control', 'no-store').send({
      node: deps.nodeId,
      clusterId: deps.config.clusterId,
      peerId: deps.cluster.peerId,
      listen: deps.cluster.listenAddrs,
      keySetDigest: digest,
      digestsAgree: live.every((m) => m.digest === digest),
      members,
    });
  });
}
