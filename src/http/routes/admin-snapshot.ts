import { Readable } from 'node:stream';
import { OPERATOR_SCOPES } from '../../config/defaults.js';
import type { FastifyInstance } from 'fastify';
import { KeymeshError } from '../../errors.js';
import type { HttpDeps } from '../deps.js';
import { recordOperatorChange } from '../operator-audit.js';

/** The media type of a snapshot file, both ways. */
const SNAPSHOT_TYPE = 'application/octet-stream';

/**
 * `GET /v1/snapshot` (`admin`): the cluster's committed register values and this node's key records as a sealed
 * snapshot file, streamed (`src/snapshot/`). `POST /v1/restore` (`admin`, body: the file as
 * `application/octet-stream`, streamed in, never buffered whole) verifies it and writes it into this cluster →
 * `{snapshot, registers: {written, equal, conflicting, skipped}, keys: {written, equal, skipped}, conflicts}`.
 * Both are audited before they start.
 */
export function registerAdminSnapshotRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const admin = deps.auth.requires('admin');
  const snapshots = () => {
    if (!deps.snapshots) throw new KeymeshError('ERR_UNAVAILABLE', 'this node runs without the register');
    return deps.snapshots;
  };

  app.get('/v1/snapshot', { preHandler: admin }, async (req, reply) => {
    const service = snapshots();
    await recordOperatorChange(deps, req, (operator) => ({ event: 'snapshot:save', operator }));
    const bytes = Readable.from(service.snapshot(), { objectMode: false });
    return reply
      .header('cache-control', 'no-store')
      .header('content-disposition', 'attachment; filename="keymesh.snapshot"')
      .type(SNAPSHOT_TYPE)
      .send(bytes);
  });

  // the file is handed to the route as the request stream itself; only this route's scope parses it so
  void app.register(async (scope) => {
    scope.addContentTypeParser(SNAPSHOT_TYPE, (_req, payload, done) => done(null, payload));
    scope.post('/v1/restore', { preHandler: admin }, async (req, reply) => {
      const service = snapshots();
      if (!(req.body instanceof Readable))
        throw new KeymeshError('ERR_UNSUPPORTED_MEDIA_TYPE', `send the snapshot file as ${SNAPSHOT_TYPE}`);
      await recordOperatorChange(deps, req, (operator) => ({ event: 'snapshot:restore', operator }));
      // registrations grant scopes and trust: restored only for a caller that holds every scope
      const scopes = deps.auth.scopesOf(req.headers.authorization);
      const report = await service.restore(req.body, {
        registrations: OPERATOR_SCOPES.every((s) => scopes.includes(s)),
      });
      return reply.header('cache-control', 'no-store').send(report);
    });
  });
}
