/**
 * The HTTP server of API.md (fastify): routes, body limits, TLS, and the error edge. It only translates between
 * HTTP and the components it is given.
 */
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import formBody from '@fastify/formbody';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { KeymeshError, listenError } from '../errors.js';
import type { Startable } from '../startable.js';
import type { HttpDeps } from './deps.js';
import { handleError } from './errors.js';
import { registerLoadShedding } from './load-shedding.js';
import { registerAdminClusterRoutes } from './routes/admin-cluster.js';
import { registerAdminFaultRoutes } from './routes/admin-faults.js';
import { registerAdminKeyRoutes } from './routes/admin-keys.js';
import { registerAdminRegisterRoutes } from './routes/admin-registers.js';
import { registerAdminSnapshotRoutes } from './routes/admin-snapshot.js';
import { registerAdminSecretRoutes } from './routes/admin-secrets.js';
import { registerManagementKeyRoutes } from './routes/admin-management-keys.js';
import { registerRegistrationRoutes } from './routes/admin-registrations.js';
import { registerSecretServerRoutes } from './routes/secret-server.js';
import { registerTokenRoutes } from './routes/tokens.js';
import { registerWsTrustRoutes } from './routes/ws-trust.js';
import { registerDecryptRoute } from './routes/decrypt.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { publicKeyFastPath, registerPublicKeyRoutes } from './routes/public-keys.js';
import { tokenFastPath } from './routes/token-fast-path.js';
import { registerUiRoutes } from './routes/ui.js';
import { readTlsPair, type TlsPair } from './tls-pair.js';
import { TlsReloader, type TlsReloadOutcome } from './tls-reloader.js';

/**
 * Builds the fastify app with every route (not listening), over HTTPS when `tls` is given.
 * @throws ConfigInvalidError when `http.tls` is set and its pair is unreadable or bad (`readTlsPair`).
 */
export function buildHttpApp(
  deps: HttpDeps,
  tls: TlsPair | undefined = deps.config.http.tls ? readTlsPair(deps.config.http.tls, deps.clock.now()) : undefined,
): FastifyInstance {
  const { http } = deps.config;
  const fastPath = publicKeyFastPath(deps);
  const metrics = deps.metrics;
  let closing = false;
  const tokenPath = tokenFastPath(deps, {
    tls: tls !== undefined,
    underPressure: () => (app as unknown as { isUnderPressure?: () => boolean }).isUnderPressure?.() ?? false,
    closing: () => closing,
  });
  const app = Fastify({
    loggerInstance: deps.log,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: http.bodyLimitBytes,
    return503OnClosing: true,
    serverFactory: (handler) => {
      const listener = (req: IncomingMessage, res: ServerResponse) => {
        // the key fast path is counted (one integer increment), never timed: it is the relying parties' hot path;
        // the token fast path counts and times itself as its fastify route would
        if (fastPath(req, res)) metrics?.fastPathResponse();
        else if (!tokenPath(req, res)) handler(req, res);
      };
      return tls ? createHttpsServer({ cert: tls.cert, key: tls.key }, listener) : createHttpServer(listener);
    },
  }) as unknown as FastifyInstance;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  registerLoadShedding(app, http.shedding);
  app.removeContentTypeParser('text/plain');
  void app.register(formBody, { bodyLimit: http.bodyLimitBytes });
  app.setErrorHandler(handleError);
  // labelled by the route pattern, never the raw URL, so the label set stays bounded
  if (metrics) {
    app.addHook('onResponse', (req, reply, done) => {
      metrics.httpRequest(req.routeOptions.url ?? 'unmatched', req.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
  }
  app.setNotFoundHandler(() => {
    throw new KeymeshError('ERR_NOT_FOUND', 'no such route');
  });
  registerHealthRoutes(app, deps);
  registerMetricsRoute(app, deps);
  registerPublicKeyRoutes(app, deps);
  registerAdminKeyRoutes(app, deps);
  registerAdminClusterRoutes(app, deps);
  registerAdminRegisterRoutes(app, deps);
  registerAdminSnapshotRoutes(app, deps);
  registerAdminSecretRoutes(app, deps);
  registerManagementKeyRoutes(app, deps);
  registerRegistrationRoutes(app, deps);
  registerAdminFaultRoutes(app, deps);
  registerSecretServerRoutes(app, deps);
  registerTokenRoutes(app, deps);
  registerWsTrustRoutes(app, deps);
  registerDecryptRoute(app, deps);
  registerUiRoutes(app, deps);
  return app;
}

/** The listening HTTP server; with `http.tls`, its certificate and key are reloaded without a restart (`tls-reloader.ts`). */
export class HttpServer implements Startable {
  readonly #deps: HttpDeps;
  #app: FastifyInstance | undefined;
  #tls: TlsReloader | undefined;
  #url: string | undefined;

  constructor(deps: HttpDeps) {
    this.#deps = deps;
  }

  /** The base URL once listening, e.g. `http://127.0.0.1:8701`. */
  get url(): string {
    if (!this.#url) throw new KeymeshError('ERR_INTERNAL', 'the HTTP server is not listening');
    return this.#url;
  }

  async start(): Promise<void> {
    if (this.#app) return;
    const { config, clock, log, metrics } = this.#deps;
    const { host, port, tls } = config.http;
    const pair = tls ? readTlsPair(tls, clock.now()) : undefined;
    const app = buildHttpApp(this.#deps, pair);
    try {
      await app.listen({ host, port });
    } catch (err) {
      await app.close();
      throw listenError('HTTP', host, port, err);
    }
    const address = app.server.address() as AddressInfo;
    const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.#url = `${tls ? 'https' : 'http'}://${shownHost}:${address.port}`;
    this.#app = app;
    if (tls && pair) {
      const server = app.server as unknown as HttpsServer;
      this.#tls = new TlsReloader({
        files: tls,
        current: pair,
        log,
        now: () => clock.now(),
        apply: (next) => server.setSecureContext({ cert: next.cert, key: next.key }),
        ...(metrics ? { onReload: (outcome: 'reloaded' | 'refused') => metrics.tlsReload(outcome) } : {}),
      });
      await this.#tls.start();
    }
  }

  /**
   * Reads the `http.tls` pair again and serves it to new connections when it is good; a bad pair is logged and
   * refused, and the last good one stays. `undefined` when the server is not listening or has no TLS.
   */
  reloadTls(reason: string): TlsReloadOutcome | undefined {
    return this.#tls?.reload(reason);
  }

  async stop(): Promise<void> {
    const app = this.#app;
    this.#app = undefined;
    await this.#tls?.stop();
    this.#tls = undefined;
    await app?.close();
  }
}
