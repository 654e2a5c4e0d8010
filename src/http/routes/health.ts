import type { FastifyInstance } from 'fastify';
import type { HttpDeps } from '../deps.js';

/** `GET /healthz` (the process answers) and `GET /readyz` (keyring loaded, schedule run, API serving). */
export function registerHealthRoutes(app: FastifyInstance, deps: HttpDeps): void {
  app.get('/healthz', async (_req, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    reply.header('cache-control', 'no-store');
    if (!deps.isReady()) return reply.code(503).send({ status: 'starting' });
    return reply.send({
      status: 'ready',
      node: deps.nodeId,
      keys: deps.keyring.list().length,
      corruptRecords: deps.keyring.corruptRecords.length,
    });
  });
}
