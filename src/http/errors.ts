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

/**
 * RFC 6749 §5.2: `error_description` holds only %x20-21 / %x23-5B / %x5D-7E (printable ASCII without `"` and `\\`).
 * Anything else is dropped, and the text is cut to `MAX_ERROR_DESCRIPTION_CHARS`.
 */
export function safeDescription(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5b\x5d-\x7e]/g, '').slice(0, MAX_ERROR_DESCRIPTION_CHARS);
}

/** Longest `error_description` answered. Default is 300 characters. */
export const MAX_ERROR_DESCRIPTION_CHARS = 300;

/** The `WWW-Authenticate` challenge of a 401 (RFC 6749 §5.2 for client authentication, RFC 6750 §3 for bearer tokens). */
function challenge(e: KeymeshError, description: string): string {
  const realm = 'realm="keymesh"';
  if (e.code === 'ERR_INVALID_CLIENT') return `Basic ${realm}`;
  return `Bearer ${realm}, error="${ERROR_CODES[e.code].oauthError}", error_description="${description}"`;
}

/** An error's HTTP answer: status, headers and body (`{error, error_description}`), and whether it is logged. */
export interface ErrorAnswer {
  readonly error: KeymeshError;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: { error: string; error_description: string };
  /** A 5xx other than shedding: logged with its cause (shedding is counted, never logged: it comes under load). */
  readonly logged: boolean;
}

/** The answer to `err` on a request for `url`: the one place errors become HTTP answers, fastify's or not. */
export function errorAnswer(err: unknown, url: string): ErrorAnswer {
  const e = toKeymeshError(err);
  // the cluster's inner state (register keys, node ids, peers' errors) is the operator's business: public callers
  // of an unavailable cluster read the code's summary
  const internal = (e.code === 'ERR_UNAVAILABLE' || e.code === 'ERR_OUTCOME_UNKNOWN') && !url.startsWith('/v1/');
  const description = !e.expose
    ? 'internal error'
    : safeDescription(internal ? ERROR_CODES[e.code].summary : e.message);
  const headers: Record<string, string> = {};
  if (e.status === 401) headers['www-authenticate'] = challenge(e, description);
  if (e.code === 'ERR_FORBIDDEN') headers['www-authenticate'] = 'Bearer realm="keymesh", error="insufficient_scope"';
  if (e.retryAfterS !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(e.retryAfterS)));
  headers['cache-control'] = 'no-store';
  return {
    error: e,
    status: e.status,
    headers,
    body: { error: ERROR_CODES[e.code].oauthError, error_description: description },
    logged: e.status >= 500 && e.code !== 'ERR_OVERLOADED',
  };
}

/** Logs `answer` with its cause when it is to be logged (see {@link ErrorAnswer.logged}). */
export function logErrorAnswer(
  answer: ErrorAnswer,
  log: Pick<FastifyRequest['log'], 'error'>,
  route: string | undefined,
): void {
  const e = answer.error;
  if (answer.logged) log.error({ err: e.cause ?? e, code: e.code, route }, 'request failed');
}

/** Fastify error handler: answers with {@link errorAnswer}. */
export function handleError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const answer = errorAnswer(err, request.url);
  logErrorAnswer(answer, request.log, request.routeOptions.url);
  return reply.code(answer.status).headers(answer.headers).send(answer.body);
}
