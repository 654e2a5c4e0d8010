/**
 * The cluster page, public and read-only: `GET /ui` (the HTML shell), `GET /ui/app.js`, `GET /ui/style.css` and
 * `GET /ui/state` (the JSON it polls: members, the cluster map and ring, the key timeline, recent rotations and
 * revocations). No token is needed or accepted; nothing secret is in it (see `ui/state.ts`).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { HttpDeps } from '../deps.js';
import { renderUiPage, UI_CSP } from '../ui/page.js';
import { UI_SCRIPT } from '../ui/script.js';
import { buildUiState } from '../ui/state.js';
import { UI_STYLE } from '../ui/style.js';

/** Registers the cluster page's four public routes. */
export function registerUiRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const page = renderUiPage(deps.config.name);
  const send = (reply: FastifyReply, type: string, body: string) =>
    reply
      .header('content-type', type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .send(body);

  app.get('/ui', async (_req, reply) =>
    send(
      reply.header('content-security-policy', UI_CSP).header('referrer-policy', 'no-referrer'),
      'text/html; charset=utf-8',
      page,
    ),
  );
  app.get('/ui/app.js', async (_req, reply) => send(reply, 'text/javascript; charset=utf-8', UI_SCRIPT));
  app.get('/ui/style.css', async (_req, reply) => send(reply, 'text/css; charset=utf-8', UI_STYLE));
  app.get('/ui/state', async (_req, reply) =>
    reply.header('cache-control', 'no-store').header('x-content-type-options', 'nosniff').send(buildUiState(deps)),
  );
}
