import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { KeymeshError } from '../../errors.js';
import type { HttpDeps } from '../deps.js';
import { recordOperatorChange } from '../operator-audit.js';
import { requirePrivateChannel } from '../transport.js';
import { parseInput } from '../validate.js';

const epochParams = z.strictObject({ epoch: z.coerce.number().int().min(1).max(1_000_000) });
const installBody = z
  .strictObject({
    key: z
      .string()
      .regex(
        /^(?:[1-9][0-9]{0,6}\.)?[A-Za-z0-9_-]{43}$/,
        'a management key: 43 characters of base64url, optionally after "<epoch>."',
      )
      .optional(),
  })
  .default({});

/**
 * The management-key rotation (`admin`, `src/management-key/rotation.ts`):
 * - `GET /v1/management-keys`: every member's keys, sealing epoch and re-seal progress, and per-epoch counts;
 * - `POST /v1/management-keys` `{key?}`: installs a key on every member (a new random one, shown once, without `key`);
 *   it carries a management key, so it is answered only over HTTPS or to a loopback caller (`ERR_INSECURE_TRANSPORT`);
 * - `POST /v1/management-keys/{epoch}/use`: every member seals with it (refused until every member holds it);
 * - `DELETE /v1/management-keys/{epoch}`: every member forgets it (refused until every member seals with a newer
 *   key and finished sealing everything again).
 * Every step is recorded in the audit log before it is taken; answers are never cached.
 */
export function registerManagementKeyRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const admin = deps.auth.requires('admin');
  const rotation = () => {
    if (!deps.managementKeys) throw new KeymeshError('ERR_UNAVAILABLE', 'this node runs without the cluster');
    return deps.managementKeys;
  };

  app.get('/v1/management-keys', { preHandler: admin }, async (_req, reply) => {
    return reply.header('cache-control', 'no-store').send(await rotation().status());
  });

  app.post('/v1/management-keys', { preHandler: admin }, async (req, reply) => {
    // a management key (the one sent, or the one generated and answered) only over HTTPS or on loopback
    requirePrivateChannel(req);
    const { key } = parseInput(installBody, req.body ?? {}, 'body');
    await recordOperatorChange(deps, req, (operator) => ({
      event: 'management-key:step',
      operator,
      step: 'install',
      epoch: 0,
    }));
    return reply.header('cache-control', 'no-store').send(await rotation().install(key));
  });

  app.post('/v1/management-keys/:epoch/use', { preHandler: admin }, async (req, reply) => {
    const { epoch } = parseInput(epochParams, req.params, 'path');
    await recordOperatorChange(deps, req, (operator) => ({
      event: 'management-key:step',
      operator,
      step: 'use',
      epoch,
    }));
    return reply.header('cache-control', 'no-store').send(await rotation().use(epoch));
  });

  app.delete('/v1/management-keys/:epoch', { preHandler: admin }, async (req, reply) => {
    const { epoch } = parseInput(epochParams, req.params, 'path');
    await recordOperatorChange(deps, req, (operator) => ({
      event: 'management-key:step',
      operator,
      step: 'remove',
      epoch,
    }));
    return reply.header('cache-control', 'no-store').send(await rotation().remove(epoch));
  });
}
