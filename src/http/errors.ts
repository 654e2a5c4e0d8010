/**
 * The HTTP edge of the error registry: turns any thrown value into an RFC 6749-style `{error, error_description}`
 * body. The status and whether the message is shown come from the error's code; an unexpected error is logged and
 * answered with a generic 500, never a stack trace or an internal message.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, isKeymeshError, KeymeshError, type ErrorCode } from '../errors.js';

const FASTIFY_CODES: Readonly<Record<string, ErrorCode>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'ERR_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'ERR_INVALID_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'ERR_INVALID_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'ERR_INVALID_REQUEST',
};

/** Maps any error to a KeymeshError the edge may answer with. */
export function toKeymeshError(err: unknown): KeymeshError {
  if (isKeymeshError(err)) return err;
  const fe = err as Partial<FastifyError>;
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return new KeymeshError(mapped, describeFastify(mapped), { cause: err });
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return new KeymeshError('ERR_INVALID_REQUEST', 'the request is malformed', { cause: err });
  }
  return new KeymeshError('ERR_INTERNAL', 'internal error', { cause: err });
}

function describeFastify(code: ErrorCode): string {
  switch (code) {
    case 'ERR_BODY_TOO_LARGE':
      return 'the request body is too large';
    case 'ERR_UNSUPPORTED_MEDIA_TYPE':
      return 'the request body must be application/json';
    default:
      return 'the request body is not valid JSON';
  }
}

/** Fastify error handler: the one place errors become HTTP answers. */
export function handleError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const e = toKeymeshError(err);
  if (e.status >= 500) request.log.error({ err: e.cause ?? e, code: e.code, route: request.routeOptions.url }, 'request failed');
  if (e.code === 'ERR_UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="keymesh", error="invalid_token"');
  if (e.code === 'ERR_FORBIDDEN') reply.header('www-authenticate', 'Bearer realm="keymesh", error="insufficient_scope"');
  return reply
    .code(e.status)
    .header('cache-control', 'no-store')
    .send({ error: ERROR_CODES[e.code].oauthError, error_description: e.expose ? e.message : 'internal error' });
}
