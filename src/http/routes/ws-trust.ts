/**
 * WS-Trust 1.3/1.4 over SOAP 1.1 and 1.2 (docs/ws-trust.md): `POST /ws-trust` (`/realms/<realm>/ws-trust` for
 * another realm) takes a `RequestSecurityToken` and answers what `/token`, `/introspect`, `/renew` and `/revoke`
 * would, as an RSTR or a SOAP fault; `GET /ws-trust?wsdl` serves its WSDL, whose address is the realm's issuer.
 *
 * The body is read as text only for the SOAP content types, at most `WS_TRUST_MAX_BYTES` (or `http.bodyLimitBytes`
 * when lower), and parsed by the hardened parser (`src/xml/parse.ts`). A `UsernameToken` carries a client secret,
 * (and what a signed request gets may hold key material), so a request off loopback over plain HTTP is refused
 * with a fault before it is authenticated.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KeymeshError } from '../../errors.js';
import type { TokenService } from '../../tokens/token-service.js';
import { wsTrustOperations } from '../../tokens/ws-trust-operations.js';
type Endpoint = typeof import('../../ws-trust/endpoint.js');

let loading: Promise<Endpoint> | undefined;
/** The SOAP binding and the XML stack under it, imported on the first request (about 10 MiB a node may never use). */
function endpoint(): Promise<Endpoint> {
  loading ??= import('../../ws-trust/endpoint.js');
  return loading;
}
import type { HttpDeps } from '../deps.js';
import { requirePrivateChannel } from '../transport.js';
import { realmPrefix } from './public-keys.js';
import { tokenServiceUnavailable } from './tokens.js';

/** Largest SOAP request read: 256 KiB. */
export const WS_TRUST_MAX_BYTES = 256 * 1024;
const SOAP_TYPES = ['text/xml', 'application/soap+xml'];

export function registerWsTrustRoutes(app: FastifyInstance, deps: HttpDeps): void {
  const maxBytes = Math.min(WS_TRUST_MAX_BYTES, deps.config.http.bodyLimitBytes);
  void app.register(async (scope) => {
    // every content type is read as text here, so a wrong one is answered with a SOAP fault (415), not a JSON error
    scope.addContentTypeParser(SOAP_TYPES, { parseAs: 'string', bodyLimit: maxBytes }, (_req, body, done) =>
      done(null, body),
    );
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit: maxBytes }, (_req, body, done) => done(null, body));
    scope.setErrorHandler(async (err: { statusCode?: number }, req, reply) => {
      if (err.statusCode !== 413) throw err;
      const tooLarge = new KeymeshError('ERR_BODY_TOO_LARGE', `the request is larger than ${maxBytes} bytes`);
      const answer = (await endpoint()).faultResponse(req.headers['content-type'], tooLarge);
      return reply.status(413).header('content-type', answer.contentType).send(answer.body);
    });
    for (const realm of Object.keys(deps.config.realms)) registerRealm(scope, deps, realm, maxBytes);
  });
}

function registerRealm(app: FastifyInstance, deps: HttpDeps, realm: string, maxBytes: number): void {
  const path = `${realmPrefix(realm)}/ws-trust`;
  const address = `${deps.config.realms[realm]!.issuer}/ws-trust`;
  let description: string | undefined;

  app.get(path, async (req, reply) => {
    const query = req.query as Record<string, unknown>;
    if (!('wsdl' in query) && !('WSDL' in query))
      throw new KeymeshError('ERR_INVALID_REQUEST', 'GET serves the WSDL only: /ws-trust?wsdl');
    description ??= (await endpoint()).wsdl(address);
    return reply.header('content-type', 'text/xml; charset=utf-8').send(description);
  });

  app.post(path, async (req: FastifyRequest, reply: FastifyReply) => {
    const contentType = req.headers['content-type'];
    const body = typeof req.body === 'string' ? req.body : '';
    const action = req.headers['soapaction'];
    const tokens = deps.tokens?.get(realm);
    const operations = tokens ? guarded(tokens, req, deps) : unavailable(deps);
    const { handleWsTrust } = await endpoint();
    const answer = await handleWsTrust(
      { body, contentType, soapAction: typeof action === 'string' ? action : undefined },
      operations,
      { now: () => deps.clock.now(), clockSkewS: Math.ceil(deps.config.clockSkewMs / 1000), maxBytes },
    );
    deps.metrics?.tokenRequest('ws-trust', answer.status < 400 ? 'ok' : 'fault');
    return reply
      .status(answer.status)
      .header('content-type', answer.contentType)
      .header('cache-control', 'no-store')
      .send(answer.body);
  });
}

/** The token service's operations, refusing plain HTTP off loopback before a client secret is looked at. */
function guarded(tokens: TokenService, req: FastifyRequest, deps: HttpDeps) {
  const operations = wsTrustOperations(tokens, req.socket.remoteAddress ?? 'unknown', () => deps.clock.now());
  return {
    ...operations,
    authenticate: (username: string, password: string) => {
      requirePrivateChannel(req);
      return operations.authenticate(username, password);
    },
    // a signed request carries no secret, but what it gets may (an SCT's entropy): the same channel rule
    authenticateSigned: (...args: Parameters<typeof operations.authenticateSigned>) => {
      requirePrivateChannel(req);
      return operations.authenticateSigned(...args);
    },
  };
}

/** Operations of a node that cannot serve the realm yet: every request is a fault saying why. */
function unavailable(deps: HttpDeps) {
  const refuse = async (): Promise<never> => {
    throw tokenServiceUnavailable(deps);
  };
  return {
    authenticate: refuse,
    authenticateSigned: refuse,
    issue: refuse,
    validate: refuse,
    renew: refuse,
    cancel: refuse,
  };
}
