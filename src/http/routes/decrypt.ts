import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DEFAULT_REALM } from '../../config/defaults.js';
import { KeymeshError } from '../../errors.js';
import type { HttpDeps } from '../deps.js';
import { requirePrivateChannel } from '../transport.js';
import { parseInput } from '../validate.js';

const decryptBody = z.strictObject({ jwe: z.string().min(1), realm: z.string().max(64).default(DEFAULT_REALM) });

/** `POST /v1/decrypt` (`backend`): the POP's private half, for the backend beside the node. */
export function registerDecryptRoute(app: FastifyInstance, deps: HttpDeps): void {
  app.post('/v1/decrypt', async (req, reply) => {
    deps.auth.authorize(req.headers.authorization, 'backend');
    requirePrivateChannel(req);
    const { jwe, realm } = parseInput(decryptBody, req.body, 'body');
    if (!deps.config.realms[realm]) throw new KeymeshError('ERR_NOT_FOUND', `no realm named ${realm}`);
    const { plaintext, kid } = await deps.decryptor.decrypt(realm, jwe);
    return reply.header('cache-control', 'no-store').send({ plaintext: Buffer.from(plaintext).toString('base64url'), kid });
  });
}
