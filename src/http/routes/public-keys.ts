import type { IncomingMessage, ServerResponse } from 'node:http';
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

/**
 * The fast path of every relying party, in front of fastify: a plain `GET` of exactly a JWKS or POP path is answered
 * from the ready document without building a fastify request. Anything else (HEAD, a query string, other paths)
 * returns false and goes through fastify, whose routes above answer the same bytes.
 */
export function publicKeyFastPath(deps: HttpDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  const paths = new Map<string, [string, JwksKind]>();
  for (const realm of Object.keys(deps.config.realms)) {
    paths.set(`${realmPrefix(realm)}/.well-known/jwks.json`, [realm, 'jwks']);
    paths.set(`${realmPrefix(realm)}/pop`, [realm, 'pop']);
  }
  return (req, res) => {
    if (req.method !== 'GET') return false;
    const target = paths.get(req.url ?? '');
    if (!target) return false;
    let doc: JwksDocument;
    try {
      doc = deps.jwks.document(target[0], target[1]);
    } catch {
      return false; // fastify's route answers, through the error edge
    }
    write(doc, req.headers['if-none-match'], res);
    return true;
  };
}

/** Ready-made response headers per document (200 and 304), built once with the document. */
const HEADERS = new WeakMap<JwksDocument, { ok: Record<string, string>; notModified: Record<string, string> }>();

/** The fastify route: the ready bytes written straight to the socket. */
function send(deps: HttpDeps, realm: string, kind: JwksKind, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const doc = deps.jwks.document(realm, kind);
  reply.hijack();
  write(doc, req.headers['if-none-match'], reply.raw);
  return reply;
}

function write(doc: JwksDocument, ifNoneMatch: string | undefined, res: ServerResponse): void {
  let headers = HEADERS.get(doc);
  if (!headers) {
    const common = { etag: doc.etag, 'cache-control': doc.cacheControl, vary: 'accept-encoding' };
    headers = {
      ok: { ...common, 'content-type': 'application/json', 'content-length': String(doc.body.length) },
      notModified: common,
    };
    HEADERS.set(doc, headers);
  }
  if (matchesEtag(ifNoneMatch, doc.etag)) res.writeHead(304, headers.notModified).end();
  else res.writeHead(200, headers.ok).end(doc.body);
}

/** RFC 9110 `If-None-Match`: `*` or a list of (weak or strong) tags, compared weakly. */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag);
}
