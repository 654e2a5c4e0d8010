import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { KeymeshError } from '../../errors.js';
import type { HttpDeps } from '../deps.js';
import { recordOperatorChange } from '../operator-audit.js';
import { parseInput } from '../validate.js';

/** Registers an operator reaches over HTTP live under this prefix, apart from the secret server's and the map's. */
const NAMESPACE = 'kv/';

const keyParams = z.strictObject({
  key: z.string().regex(/^[A-Za-z0-9._:-]{1,200}$/, '1–200 characters of A–Z, a–z, 0–9, ".", "_", ":", "-"'),
});
const putBody = z.strictObject({
  value: z.string().regex(/^[A-Za-z0-9_-]{1,87382}$/, 'base64url bytes (at most 64 KiB)'),
});

/**
 * `PUT /v1/registers/{key}` `{value}` and `GET /v1/registers/{key}` (`admin`): get-or-create and read of a
 * write-once register, for operators checking the register and for the benchmark. The first value chosen wins
 * for ever; `created` says whether it is the one sent. `roundTrips` counts the phases sent to replicas (a
 * forwarded operation adds one).
 */
export function registerAdminRegisterRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const admin = deps.auth.requires('admin');
  const agreement = () => {
    if (!deps.agreement) throw new KeymeshError('ERR_UNAVAILABLE', 'this node runs without the register');
    return deps.agreement;
  };

  app.put('/v1/registers/:key', { preHandler: admin }, async (req, reply) => {
    const { key } = parseInput(keyParams, req.params, 'path');
    const { value } = parseInput(putBody, req.body, 'body');
    const candidate = Buffer.from(value, 'base64url');
    if (candidate.byteLength > 64 * 1024) throw new KeymeshError('ERR_INVALID_REQUEST', 'body.value: at most 64 KiB');
    await recordOperatorChange(deps, req, (operator) => ({ event: 'register:write', operator, key }));
    const outcome = await agreement().getOrCreate(`${NAMESPACE}${key}`, candidate);
    const chosen = Buffer.from(outcome.value!);
    return reply
      .header('cache-control', 'no-store')
      .send({ value: chosen.toString('base64url'), created: chosen.equals(candidate), roundTrips: outcome.roundTrips });
  });

  app.get('/v1/registers/:key', { preHandler: admin }, async (req, reply) => {
    const { key } = parseInput(keyParams, req.params, 'path');
    const outcome = await agreement().read(`${NAMESPACE}${key}`);
    if (outcome.value === undefined) throw new KeymeshError('ERR_NOT_FOUND', `register ${key} holds no value`);
    return reply
      .header('cache-control', 'no-store')
      .send({ value: Buffer.from(outcome.value).toString('base64url'), roundTrips: outcome.roundTrips });
  });
}
