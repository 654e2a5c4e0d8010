import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { DEFAULT_REALM } from '../../config/defaults.js';
import type { JwksKind } from '../../keyring/jwks-view.js';
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

function send(deps: HttpDeps, realm: string, kind: JwksKind, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const doc = deps.jwks.document(realm, kind);
  reply.header('etag', doc.etag).header('cache-control', doc.cacheControl).header('vary', 'accept-encoding');
  if (matchesEtag(req.headers['if-none-match'], doc.etag)) return reply.code(304).send();
  return reply.header('content-type', 'application/json').send(doc.body);
}

/** RFC 9110 `If-None-Match`: `*` or a list of (weak or strong) tags, compared weakly. */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
