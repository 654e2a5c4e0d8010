import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { DEFAULT_REALM } from '../../config/defaults.js';
import { KeymeshError } from '../../errors.js';
import type { ChangeOutcome } from '../../registrations/log.js';
import type { RegistrationKind } from '../../registrations/records.js';
import type { Registry } from '../../registrations/registry.js';
import {
  KIND_BY_PATH,
  newSecret,
  redact,
  shapeRecord,
  type KindPath,
  type Shaped,
} from '../../registrations/requests.js';
import type { HttpDeps } from '../deps.js';
import { recordOperatorChange } from '../operator-audit.js';
import { requirePrivateChannel } from '../transport.js';
import { parseInput } from '../validate.js';

const kindParams = z.strictObject({ kinds: z.enum(Object.keys(KIND_BY_PATH) as [KindPath, ...KindPath[]]) });
const itemParams = kindParams.extend({ id: z.string().min(1).max(512) });
const realmQuery = z.strictObject({
  realm: z
    .string()
    .regex(/^[a-z0-9_-]{1,64}$/, 'a realm name')
    .default(DEFAULT_REALM),
});
const secretBody = z.strictObject({ keepPrevious: z.boolean().default(false) }).default({ keepPrevious: false });

/**
 * Registrations at run time (`admin`, issue 16; docs/registrations.md): clients, resource servers, trusted issuers
 * and operator tokens, kept in the cluster's registrations log.
 * - `GET /v1/registrations`: the version this node serves, the bootstrap, how its config file stands against the
 *   cluster, and every registration (kind, realm, id, version, who changed it last; no record);
 * - `GET /v1/registrations/{kinds}?realm=` and `GET /v1/registrations/{kinds}/{id}?realm=`: records, without hashes;
 * - `PUT /v1/registrations/{kinds}/{id}?realm=` (JSON, the config entry's schema): creates or replaces; `If-Match:
 *   "<version>"` (or `*`: it exists) or `If-None-Match: *` make it a compare-and-set (409 `ERR_REGISTRATION_CONFLICT`);
 *   a change that keeps a credential it cannot see (a hash) is always made against the version it read;
 * - `DELETE /v1/registrations/{kinds}/{id}?realm=` (optionally `If-Match`);
 * - `POST /v1/registrations/{clients|operators}/{id}/secret?realm=` `{keepPrevious?}`: a new secret.
 * A generated secret is answered once, only over HTTPS or to a loopback caller; every change is audited before it is
 * made, and an operator grants no scope it does not hold.
 */
export function registerRegistrationRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const admin = deps.auth.requires('admin');
  const registry = (): Registry => {
    if (!deps.registry) throw new KeymeshError('ERR_UNAVAILABLE', 'this node runs without the cluster');
    return deps.registry;
  };
  /** Issuers and resource servers decide whose user tokens release users' secrets, and to whom: `trust` too. */
  const mayChange = (req: FastifyRequest, kind: RegistrationKind) => {
    if (
      (kind === 'issuer' || kind === 'resource-server') &&
      !deps.auth.scopesOf(req.headers.authorization).includes('trust')
    ) {
      throw new KeymeshError(
        'ERR_FORBIDDEN',
        `changing a ${kind} needs an operator token with scope "trust" too: it decides who receives users' secrets`,
      );
    }
  };
  const target = (req: FastifyRequest) => {
    const { kinds, id } = parseInput(itemParams, req.params, 'path');
    const { realm } = parseInput(realmQuery, req.query, 'query');
    const kind = KIND_BY_PATH[kinds];
    if (kind === 'operator' ? realm !== DEFAULT_REALM : !deps.config.realms[realm]) {
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        kind === 'operator'
          ? 'query.realm: operator tokens belong to no realm; leave it out'
          : `query.realm: no realm "${realm}" is configured on this node`,
      );
    }
    return { kind, realm, id };
  };
  const item = (r: Registry, kind: RegistrationKind, realm: string, id: string) => {
    const held = r.log.get(kind, realm, id);
    if (!held) throw new KeymeshError('ERR_REGISTRATION_NOT_FOUND', `no ${kind} ${id} is registered in realm ${realm}`);
    return held;
  };
  const answer = (reply: FastifyReply, status: number, body: Record<string, unknown>, version?: number) => {
    if (version !== undefined) reply.header('etag', `"${version}"`);
    return reply.code(status).header('cache-control', 'no-store').send(body);
  };

  app.get('/v1/registrations', { preHandler: admin }, async (_req, reply) => {
    const r = registry();
    return answer(reply, 200, {
      version: r.version,
      phase: r.phase,
      fileDigest: r.fileDigest,
      bootstrap: r.log.bootstrap ?? null,
      differences: r.differences(),
      registrations: r.log
        .list()
        .map((g) => ({ kind: g.kind, realm: g.realm, id: g.id, version: g.version, by: g.by })),
    });
  });

  app.get('/v1/registrations/:kinds', { preHandler: admin }, async (req, reply) => {
    const { kinds } = parseInput(kindParams, req.params, 'path');
    const realm =
      (req.query as { realm?: unknown }).realm === undefined
        ? undefined
        : parseInput(realmQuery, req.query, 'query').realm;
    const r = registry();
    const kind = KIND_BY_PATH[kinds];
    return answer(reply, 200, {
      version: r.version,
      items: r.log
        .list(kind, realm)
        .map((g) => ({ kind, realm: g.realm, id: g.id, version: g.version, by: g.by, record: redact(kind, g.record) })),
    });
  });

  app.get('/v1/registrations/:kinds/:id', { preHandler: admin }, async (req, reply) => {
    const { kind, realm, id } = target(req);
    const held = item(registry(), kind, realm, id);
    return answer(
      reply,
      200,
      { kind, realm, id, version: held.version, by: held.by, record: redact(kind, held.record) },
      held.version,
    );
  });

  app.put('/v1/registrations/:kinds/:id', { preHandler: admin }, async (req, reply) => {
    const { kind, realm, id } = target(req);
    const r = registry();
    mayChange(req, kind);
    const existing = r.log.get(kind, realm, id);
    if (kind === 'operator' && id === 'admin')
      throw new KeymeshError('ERR_INVALID_REQUEST', 'path.id: "admin" is the name of each node\'s own admin token');
    const shaped = shapeRecord(kind, realm, id, req.body, existing?.record, deps.config);
    // a credential carried over from the record read here, and an operator checked against the one read here, are
    // written only over that same version
    const expects =
      precondition(req, existing?.version) ??
      (shaped.kept || kind === 'operator' ? (existing?.version ?? 0) : undefined);
    if (kind === 'operator') {
      grantsOnlyHeld(deps, req, (shaped.record as { scopes: readonly string[] }).scopes);
      if (existing) grantsOnlyHeld(deps, req, (existing.record as { scopes: readonly string[] }).scopes);
      const holder = deps.auth.nameOf((shaped.record as { hash: string }).hash);
      if (holder !== undefined && holder !== id) {
        throw new KeymeshError('ERR_INVALID_REQUEST', 'body.hash: another operator has this token');
      }
    }
    if (shaped.secret) requirePrivateChannel(req);
    await recordOperatorChange(deps, req, (operator) => ({
      event: 'registration:change',
      operator,
      op: 'put',
      kind,
      realm,
      id,
    }));
    const by = deps.auth.authorize(req.headers.authorization, 'admin');
    const outcome = await r.change({
      op: 'put',
      kind,
      realm,
      id,
      record: shaped.record,
      by,
      ...(expects === undefined ? {} : { expects }),
    });
    return answered(reply, outcome, kind, realm, id, shaped, existing === undefined ? 201 : 200);
  });

  app.delete('/v1/registrations/:kinds/:id', { preHandler: admin }, async (req, reply) => {
    const { kind, realm, id } = target(req);
    const r = registry();
    mayChange(req, kind);
    const held = item(r, kind, realm, id);
    const expects = precondition(req, held.version) ?? held.version;
    if (kind === 'operator') grantsOnlyHeld(deps, req, (held.record as { scopes: readonly string[] }).scopes);
    await recordOperatorChange(deps, req, (operator) => ({
      event: 'registration:change',
      operator,
      op: 'delete',
      kind,
      realm,
      id,
    }));
    const outcome = await r.change({
      op: 'delete',
      kind,
      realm,
      id,
      by: deps.auth.authorize(req.headers.authorization, 'admin'),
      expects,
    });
    if (outcome.outcome === 'conflict') throw conflict(kind, realm, id, outcome.current);
    if (outcome.outcome === 'refused') throw new KeymeshError('ERR_INVALID_REQUEST', outcome.reason);
    return answer(reply, 200, { kind, realm, id, deleted: true, version: outcome.version });
  });

  app.post('/v1/registrations/:kinds/:id/secret', { preHandler: admin }, async (req, reply) => {
    const { kind, realm, id } = target(req);
    const r = registry();
    const held = item(r, kind, realm, id);
    const { keepPrevious } = parseInput(secretBody, req.body ?? {}, 'body');
    const expects = precondition(req, held.version) ?? held.version;
    // a new token for an operator is that operator's scopes in the caller's hands
    if (kind === 'operator') grantsOnlyHeld(deps, req, (held.record as { scopes: readonly string[] }).scopes);
    const shaped = newSecret(kind, held.record, keepPrevious);
    requirePrivateChannel(req);
    await recordOperatorChange(deps, req, (operator) => ({
      event: 'registration:change',
      operator,
      op: 'secret',
      kind,
      realm,
      id,
    }));
    const outcome = await r.change({
      op: 'put',
      kind,
      realm,
      id,
      record: shaped.record,
      by: deps.auth.authorize(req.headers.authorization, 'admin'),
      expects,
    });
    return answered(reply, outcome, kind, realm, id, shaped, 200);
  });

  function answered(
    reply: FastifyReply,
    outcome: ChangeOutcome,
    kind: RegistrationKind,
    realm: string,
    id: string,
    shaped: Shaped,
    status: number,
  ) {
    if (outcome.outcome === 'conflict') throw conflict(kind, realm, id, outcome.current);
    if (outcome.outcome === 'refused')
      throw new KeymeshError('ERR_INVALID_REQUEST', outcome.reason.replace(/^record\./, 'body.'));
    return answer(
      reply,
      status,
      { kind, realm, id, version: outcome.version, record: redact(kind, shaped.record), ...(shaped.secret ?? {}) },
      outcome.version,
    );
  }
}

/**
 * The version `If-Match` names (`*`: the current one, `current`, which must exist), 0 for `If-None-Match: *`,
 * undefined for neither.
 */
function precondition(req: FastifyRequest, current: number | undefined): number | undefined {
  const ifMatch = req.headers['if-match'];
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifMatch !== undefined && ifNoneMatch !== undefined)
    throw new KeymeshError('ERR_INVALID_REQUEST', 'headers: give If-Match or If-None-Match, not both');
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*')
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        'headers.if-none-match: only "*" (create, never replace) is understood',
      );
    return 0;
  }
  if (ifMatch === undefined) return undefined;
  if (ifMatch.trim() === '*') {
    if (current === undefined)
      throw new KeymeshError(
        'ERR_REGISTRATION_CONFLICT',
        'If-Match: * names a registration that does not exist; nothing changed',
      );
    return current;
  }
  const m = /^\s*(?:W\/)?"?([0-9]{1,15})"?\s*$/.exec(ifMatch);
  if (!m) throw new KeymeshError('ERR_INVALID_REQUEST', 'headers.if-match: expected the version as an ETag, e.g. "12"');
  return Number(m[1]);
}

function conflict(kind: RegistrationKind, realm: string, id: string, current: number): KeymeshError {
  return new KeymeshError(
    'ERR_REGISTRATION_CONFLICT',
    current === 0
      ? `${kind} ${id} in realm ${realm} does not exist (any more); nothing changed`
      : `${kind} ${id} in realm ${realm} is at version ${current} now; nothing changed (read it again and retry)`,
  );
}

/** An operator grants no scope its own token lacks. */
function grantsOnlyHeld(deps: HttpDeps, req: FastifyRequest, scopes: readonly string[]): void {
  const held = deps.auth.scopesOf(req.headers.authorization);
  const missing = scopes.filter((s) => !held.includes(s as never));
  if (missing.length > 0)
    throw new KeymeshError(
      'ERR_FORBIDDEN',
      `an operator cannot grant a scope it does not hold (${missing.join(', ')})`,
    );
}
