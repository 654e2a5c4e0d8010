import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { isKeymeshError, KeymeshError } from '../../errors.js';
import { assertionIssuer, CLIENT_AUTH_FAILED } from '../../tokens/clients.js';
import type { HttpDeps } from '../deps.js';
import { parseInput } from '../validate.js';
import { countOutcome } from './metrics.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPES = [
  'urn:ietf:params:oauth:token-type:jwt',
  'urn:ietf:params:oauth:token-type:id_token',
  'urn:ietf:params:oauth:token-type:access_token',
] as const;

const exchangeForm = z.object({
  grant_type: z.literal(TOKEN_EXCHANGE),
  subject_token: z.string().min(1).max(16_384),
  subject_token_type: z.enum(JWT_TYPES),
  audience: z.union([z.string().min(1).max(512), z.array(z.string().min(1).max(512)).min(1).max(16)]),
  client_assertion_type: z.string().max(256).optional(),
  client_assertion: z.string().max(16_384).optional(),
});

/**
 * `POST /secret-server/token-exchange` (API.md): the RFC 8693 form (`application/x-www-form-urlencoded`) plus the
 * caller's RFC 7523 client assertion. Answers `{access_token, issued_token_type, token_type, expires_in}`.
 */
export function registerSecretServerRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const record = deps.metrics && ((outcome: string) => deps.metrics!.secretServerRequest(outcome));
  app.post(
    '/secret-server/token-exchange',
    countOutcome(record, async (req, reply) => {
      const server = deps.secretServer;
      if (!server) throw new KeymeshError('ERR_UNAVAILABLE', 'this node runs without the secret server');
      const form = parseInput(exchangeForm, req.body, 'body');
      // the same throttle and the same answer for every failed client authentication as at the token endpoint, so
      // nobody learns which resource servers are registered
      const source = req.socket.remoteAddress ?? 'unknown';
      const presented = assertionIssuer(form.client_assertion);
      await deps.throttle?.check(source, presented);
      let answer;
      try {
        answer = await server.exchange({
          subjectToken: form.subject_token,
          audiences: typeof form.audience === 'string' ? [form.audience] : form.audience,
          clientAssertionType: form.client_assertion_type,
          clientAssertion: form.client_assertion,
        });
      } catch (err) {
        if (isKeymeshError(err, 'ERR_IDP_UNAVAILABLE')) await deps.throttle?.unchecked(source);
        if (!isKeymeshError(err, 'ERR_INVALID_CLIENT')) throw err;
        await deps.throttle?.failed(source, presented);
        throw new KeymeshError('ERR_INVALID_CLIENT', CLIENT_AUTH_FAILED, { cause: err });
      }
      const { token, expiresIn } = answer;
      return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send({
        access_token: token,
        issued_token_type: 'urn:ietf:params:oauth:token-type:jwt',
        token_type: 'N_A',
        expires_in: expiresIn,
      });
    }),
  );
}
