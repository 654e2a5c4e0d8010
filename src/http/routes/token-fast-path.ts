/**
 * `POST /token` in front of fastify, for the common request: the same checks, grant and answer as the fastify
 * route (`tokens.ts`), without building a fastify request and reply (about 12 % more tokens per CPU-second in the
 * token benchmark's interleaved comparison). Which requests take it is decided from the request line and headers
 * alone, before any byte of the body is read, so every other request still reaches fastify whole:
 *
 * - exactly `POST` of a realm's `/token` path (no query string), with a token service for the realm;
 * - `Content-Type` `application/x-www-form-urlencoded` (with no parameter but `charset=utf-8`), a `Content-Length`
 *   from 1 to `http.bodyLimitBytes` and no `Transfer-Encoding`;
 * - no `DPoP` header (a proof and its nonce answer go through fastify);
 * - over HTTPS or from loopback, so neither a client secret nor an SCT's entropy can cross plain HTTP here;
 * - while fastify would neither shed the request (`@fastify/under-pressure`'s own test) nor refuse it as closing.
 *
 * Errors get the same answer as fastify's error edge (`errorAnswer`), and both metrics count the request as the
 * fastify route would: `keymesh_http_request_duration_seconds` under the route pattern, and the token outcome.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parse as parseQuery } from 'fast-querystring';
import { isLoopbackHost } from '../../config/rules.js';
import type { TokenService } from '../../tokens/token-service.js';
import type { HttpDeps } from '../deps.js';
import { errorAnswer, logErrorAnswer } from '../errors.js';
import { requestOutcome } from './metrics.js';
import { realmPrefix } from './public-keys.js';
import { tokenForm } from './token-forms.js';
import { answer, ISSUED_HEADERS, issueToken } from './token-issue.js';

/** What the fast path asks of the server it sits in front of. */
export interface TokenFastPathServer {
  /** Whether the listener is HTTPS. */
  readonly tls: boolean;
  /** Whether fastify would shed a request now (then the request goes to fastify, which sheds it). */
  underPressure(): boolean;
  /** Whether the server is closing (then fastify answers 503). */
  closing(): boolean;
}

/** The media types taken, lower-cased: the form as clients and `fetch` name it (fastify reads any as UTF-8). */
const FORMS = new Set([
  'application/x-www-form-urlencoded',
  'application/x-www-form-urlencoded;charset=utf-8',
  'application/x-www-form-urlencoded; charset=utf-8',
]);

/** The fast path: true when it took the request (and will answer it), false to leave it to fastify. */
export function tokenFastPath(
  deps: HttpDeps,
  server: TokenFastPathServer,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const realms = new Map<string, string>();
  for (const realm of Object.keys(deps.config.realms)) realms.set(`${realmPrefix(realm)}/token`, realm);
  const limit = deps.config.http.bodyLimitBytes;
  return (req, res) => {
    if (req.method !== 'POST') return false;
    const route = req.url ?? '';
    const realm = realms.get(route);
    if (realm === undefined) return false;
    const headers = req.headers;
    const length = Number(headers['content-length']);
    const tokens = deps.tokens?.get(realm);
    if (
      tokens === undefined ||
      !FORMS.has(headers['content-type']?.toLowerCase() ?? '') ||
      headers['transfer-encoding'] !== undefined ||
      !(length >= 1 && length <= limit) ||
      headers['dpop'] !== undefined ||
      !(server.tls || isLoopbackHost(req.socket.remoteAddress ?? '')) ||
      server.closing() ||
      server.underPressure()
    ) {
      return false;
    }
    const started = performance.now();
    readBody(req, length, (body) => void serve(deps, tokens, route, req, res, body, started));
    return true;
  };
}

/** Calls `done` with the whole body once it has arrived; never when the request is aborted. */
function readBody(req: IncomingMessage, length: number, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size <= length) chunks.push(chunk);
  });
  req.on('end', () => {
    // Node's parser ends the body at Content-Length; a longer one is cut off, never read further
    if (size === length) done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    else req.socket.destroy();
  });
  req.on('error', () => undefined); // an aborted request has nothing to answer
}

async function serve(
  deps: HttpDeps,
  tokens: TokenService,
  route: string,
  req: IncomingMessage,
  res: ServerResponse,
  body: Buffer,
  started: number,
): Promise<void> {
  let status = 200;
  let outcome = 'ok';
  let text: string;
  try {
    const form = tokenForm.parse(parseQuery(body.toString()), 'body');
    const client = await tokens.clients.authenticate(
      req.headers.authorization,
      form,
      req.socket.remoteAddress ?? 'unknown',
    );
    text = JSON.stringify(answer(await issueToken(tokens, client, form, undefined)));
    res.writeHead(200, { ...ISSUED_HEADERS, 'content-length': Buffer.byteLength(text) });
  } catch (err) {
    const failure = errorAnswer(err, route);
    logErrorAnswer(failure, deps.log, route);
    status = failure.status;
    outcome = requestOutcome(err);
    text = JSON.stringify(failure.body);
    const length = Buffer.byteLength(text);
    res.writeHead(status, {
      ...failure.headers,
      'content-type': ISSUED_HEADERS['content-type'],
      'content-length': length,
    });
  }
  res.end(text);
  deps.metrics?.tokenRequest('token', outcome);
  deps.metrics?.httpRequest(route, 'POST', status, (performance.now() - started) / 1000);
}
