/**
 * `GET /v1/faults` and `PUT /v1/faults` (`admin`): the faults a node injects into itself (see
 * `src/node/fault-injection.ts`), for tests and chaos runs. A node started without `--allow-fault-injection`
 * answers 404 and changes nothing.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { KeymeshError } from '../../errors.js';
import type { HttpDeps } from '../deps.js';
import { parseInput } from '../validate.js';

/** Largest clock offset that can be injected: a day either way. */
const MAX_OFFSET_MS = 86_400_000;

const peerId = z.string().regex(/^[1-9A-HJ-NP-Za-km-z]{32,100}$/, 'a libp2p peer id (base58)');
const putBody = z.strictObject({
  blockPeers: z.array(peerId).max(64).optional(),
  mutePeers: z.array(peerId).max(64).optional(),
  clockOffsetMs: z.number().int().min(-MAX_OFFSET_MS).max(MAX_OFFSET_MS).optional(),
  killAfterAccept: z.string().min(1).max(300).nullable().optional(),
});

export function registerAdminFaultRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const admin = deps.auth.requires('admin');
  const faults = () => {
    if (!deps.faults)
      throw new KeymeshError(
        'ERR_NOT_FOUND',
        'fault injection is off: this node was not started with --allow-fault-injection',
      );
    return deps.faults;
  };

  app.get('/v1/faults', { preHandler: admin }, async (_req, reply) =>
    reply.header('cache-control', 'no-store').send(faults().state()),
  );

  app.put('/v1/faults', { preHandler: admin }, async (req, reply) => {
    const injected = faults();
    const change = parseInput(putBody, req.body, 'body');
    deps.log.warn({ change }, 'fault injection changed');
    return reply.header('cache-control', 'no-store').send(await injected.set(change));
  });
}
