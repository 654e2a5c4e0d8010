import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DEFAULT_REALM } from '../../config/defaults.js';
import { KeymeshError } from '../../errors.js';
import type { HttpDeps } from '../deps.js';
import { requirePrivateChannel } from '../transport.js';
import { parseInput } from '../validate.js';
import { OWN_ASSERTION_LIFETIME_S, signClientAssertion } from '../../secret-server/own-assertions.js';

const decryptBody = z.strictObject({ jwe: z.string().min(1), realm: z.string().max(64).default(DEFAULT_REALM) });
const assertionBody = z.strictObject({
  audience: z.string().min(1).max(512),
  realm: z.string().max(64).default(DEFAULT_REALM),
});

/**
 * The `backend` routes, for the backend beside the node: `POST /v1/decrypt` (the POP's private half) and
 * `POST /v1/client-assertion` (an RFC 7523 assertion signed by this cluster, for another cluster's secret server).
 */
export function registerDecryptRoute(app: FastifyInstance, deps: HttpDeps): void {
  app.post('/v1/client-assertion', async (req, reply) => {
    deps.auth.authorize(req.headers.authorization, 'backend');
    const { audience, realm } = parseInput(assertionBody, req.body, 'body');
    const realmConfig = deps.config.realms[realm];
    if (!realmConfig) throw new KeymeshError('ERR_NOT_FOUND', `no realm named ${realm}`);
    const assertion = await signClientAssertion({
      keyring: deps.keyring,
      clock: deps.clock,
      realm,
      issuer: realmConfig.issuer,
      audience,
    });
    return reply
      .header('cache-control', 'no-store')
      .send({ assertion, client_id: realmConfig.issuer, expires_in: OWN_ASSERTION_LIFETIME_S });
  });

  app.post('/v1/decrypt', async (req, reply) => {
    deps.auth.authorize(req.headers.authorization, 'backend');
    requirePrivateChannel(req);
    const { jwe, realm } = parseInput(decryptBody, req.body, 'body');
    if (!deps.config.realms[realm]) throw new KeymeshError('ERR_NOT_FOUND', `no realm named ${realm}`);
    const { plaintext, kid } = await deps.decryptor.decrypt(realm, jwe);
    return reply
      .header('cache-control', 'no-store')
      .send({ plaintext: Buffer.from(plaintext).toString('base64url'), kid });
  });
}
