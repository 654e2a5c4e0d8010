import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DEFAULT_REALM, KEY_USES } from '../../config/defaults.js';
import { KeymeshError } from '../../errors.js';
import type { KeyEntry } from '../../keyring/key-entry.js';
import type { HttpDeps } from '../deps.js';
import { recordOperatorChange } from '../operator-audit.js';
import { compareKeys, describeKey } from '../key-view.js';
import { parseInput } from '../validate.js';

const listQuery = z.strictObject({ realm: z.string().max(64).optional() });
const rotateBody = z.strictObject({ use: z.enum(KEY_USES), realm: z.string().max(64).default(DEFAULT_REALM) });
const kidParams = z.strictObject({ kid: z.string().regex(/^[A-Za-z0-9_-]{16,86}$/, 'not a key id') });

/** `admin` routes: list, rotate and revoke keys. */
export function registerAdminKeyRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const { keyring, rotation, auth, config } = deps;
  const admin = auth.requires('admin');
  const describe = (k: KeyEntry) => describeKey(deps, k);

  app.get('/v1/keys', { preHandler: admin }, async (req, reply) => {
    const { realm } = parseInput(listQuery, req.query, 'query');
    if (realm !== undefined && !config.realms[realm])
      throw new KeymeshError('ERR_NOT_FOUND', `no realm named ${realm}`);
    const keys = keyring.list(realm === undefined ? {} : { realm }).sort(compareKeys);
    return reply.header('cache-control', 'no-store').send({
      node: deps.nodeId,
      version: keyring.version,
      digest: keyring.digest(),
      keys: keys.map(describe),
      corruptRecords: keyring.corruptRecords,
    });
  });

  app.post('/v1/keys/rotate', { preHandler: admin }, async (req, reply) => {
    const { use, realm } = parseInput(rotateBody, req.body, 'body');
    await recordOperatorChange(deps, req, (operator) => ({ event: 'key:rotate', operator, realm, use }));
    const key = await rotation.rotate(realm, use);
    return reply.code(201).header('cache-control', 'no-store').send(describe(key));
  });

  app.post('/v1/keys/:kid/revoke', { preHandler: admin }, async (req, reply) => {
    const { kid } = parseInput(kidParams, req.params, 'path');
    await recordOperatorChange(deps, req, (operator) => ({ event: 'key:revoke', operator, kid }));
    const key = await rotation.revoke(kid);
    return reply.header('cache-control', 'no-store').send(describe(key));
  });
}
