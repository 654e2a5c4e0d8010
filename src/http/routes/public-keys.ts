import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_REALM } from '../../config/defaults.js';
import type { JwksDocument, JwksKind } from '../../keyring/jwks-view.js';
import type { HttpDeps } from '../deps.js';

/** The path prefix of a realm: none for the default realm, `/realms/{realm}` for the others. */
export function realmPrefix(realm: string): string {
  return realm === DEFAULT_REALM ? '' : `/realms/${realm}`;
}

/** `GET /.well-known/jwks.json` and `GET /pop` for every realm, with ETag, 304 and Cache-Control. */
export function registerPublicKeyRoutes(app: FastifyInstance, deps: HttpDeps): void {
  for (const realm of Object.keys(deps.config.realms)) {
    const prefix = realmPrefix(realm);
    app.get(`${prefix}/.well-known/jwks.json`, (req, reply) => send(deps, realm, 'jwks', req, reply));
    app.get(`${prefix}/pop`, (req, reply) => send(deps, realm, 'pop', req, reply));
  }
}

/** Ready-made response headers per document (200 and 304), built once with the document. */
const HEADERS = new WeakMap<JwksDocument, { ok: Record<string, string>; notModified: Record<string, string> }>();

/**
 * The hot path of every relying party: the document's bytes and headers are ready, so the reply is written
 * straight to the socket (hijacked past fastify's serialisation pipeline; no hooks are registered on these routes).
 */
function send(deps: HttpDeps, realm: string, kind: JwksKind, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const doc = deps.jwks.document(realm, kind);
  let headers = HEADERS.get(doc);
  if (!headers) {
    const common = { etag: doc.etag, 'cache-control': doc.cacheControl, vary: 'accept-encoding' };
    headers = { ok: { ...common, 'content-type': 'application/json', 'content-length': String(doc.body.length) }, notModified: common };
    HEADERS.set(doc, headers);
  }
  reply.hijack();
  if (matchesEtag(req.headers['if-none-match'], doc.etag)) reply.raw.writeHead(304, headers.notModified).end();
  else reply.raw.writeHead(200, headers.ok).end(doc.body);
  return reply;
}

/** RFC 9110 `If-None-Match`: `*` or a list of (weak or strong) tags, compared weakly. */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
