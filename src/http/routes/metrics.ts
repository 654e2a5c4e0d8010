/**
 * `GET /metrics`: the node's metrics in the Prometheus text format (`src/metrics/metrics.ts`), and the helper that
 * counts how the secret-server and token routes end.
 *
 * No operator token is needed, as for `/healthz`: the metrics hold no secret, no key material, no kid, no token, no
 * user and no raw URL; every label is a fixed word, a realm name or a route pattern. Operators who do not want the
 * counts seen keep the port off public networks, as for the rest of the operator surface.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES } from '../../errors.js';
import type { HttpDeps } from '../deps.js';
import { toKeymeshError } from '../errors.js';

/** A fastify route handler as the routes here write them. */
type Handler<R> = (req: FastifyRequest, reply: FastifyReply) => Promise<R>;

/** `GET /metrics` (no auth; `Cache-Control: no-store`); not registered on a node built without metrics. */
export function registerMetricsRoute(app: FastifyInstance, deps: HttpDeps): void {
  const metrics = deps.metrics;
  if (!metrics) return;
  app.get('/metrics', async (_req, reply) => {
    const { contentType, body } = await metrics.render();
    return reply.header('content-type', contentType).header('cache-control', 'no-store').send(body);
  });
}

/** The outcome label of a failed request: the RFC 6749-style `error` the HTTP edge answers it with. */
export function requestOutcome(err: unknown): string {
  return ERROR_CODES[toKeymeshError(err).code].oauthError;
}

/**
 * Wraps a route handler so that `record` hears how each request ended: `ok`, or the OAuth error code of what it
 * threw (the error then goes on to the error edge unchanged). Without `record` the handler is returned as is.
 */
export function countOutcome<R>(record: ((outcome: string) => void) | undefined, handler: Handler<R>): Handler<R> {
  if (!record) return handler;
  return async (req, reply) => {
    try {
      const result = await handler(req, reply);
      record('ok');
      return result;
    } catch (err) {
      record(requestOutcome(err));
      throw err;
    }
  };
}
