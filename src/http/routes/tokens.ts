import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { KeymeshError } from '../../errors.js';
import { GRANT_CLIENT_CREDENTIALS } from '../../tokens/token-service.js';
import type { HttpDeps } from '../deps.js';
import { parseInput } from '../validate.js';

const tokenForm = z.object({
  grant_type: z.string().min(1).max(256),
  audience: z.string().min(1).max(512).optional(),
  scope: z.string().max(2048).optional(),
  requested_token_type: z.string().min(1).max(256).optional(),
});

const tokenParam = z.object({ token: z.string().min(1).max(16_384), token_type_hint: z.string().max(64).optional() });

/**
 * The token service (API.md): `POST /token` (`client_credentials`), `POST /introspect` (RFC 7662) and
 * `POST /revoke` (RFC 7009), form-encoded, the client authenticated with `client_secret_basic`.
 */
export function registerTokenRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const service = () => {
    if (!deps.tokens) throw new KeymeshError('ERR_UNAVAILABLE', 'this node runs without the token service');
    return deps.tokens;
  };
  const noStore = { 'cache-control': 'no-store', pragma: 'no-cache' };

  app.post('/token', async (req, reply) => {
    const tokens = service();
    const client = await tokens.clients.authenticateBasic(req.headers.authorization);
    const form = parseInput(tokenForm, req.body, 'body');
    if (form.grant_type !== GRANT_CLIENT_CREDENTIALS) throw new KeymeshError('ERR_UNSUPPORTED_GRANT_TYPE', `grant_type ${form.grant_type} is not supported`);
    const issued = await tokens.clientCredentials(client, { audience: form.audience, scope: form.scope, requestedTokenType: form.requested_token_type });
    return reply.headers(noStore).send({
      access_token: issued.token, issued_token_type: issued.tokenType, token_type: 'Bearer', expires_in: issued.lifetime,
      ...(form.scope ? { scope: form.scope } : {}),
    });
  });

  app.post('/introspect', async (req, reply) => {
    const tokens = service();
    await tokens.clients.authenticateBasic(req.headers.authorization);
    const { token } = parseInput(tokenParam, req.body, 'body');
    return reply.headers(noStore).send(await tokens.introspect(token));
  });

  app.post('/revoke', async (req, reply) => {
    const tokens = service();
    const client = await tokens.clients.authenticateBasic(req.headers.authorization);
    const { token } = parseInput(tokenParam, req.body, 'body');
    await tokens.revoke(client, token);
    return reply.headers(noStore).send({});
  });
}
