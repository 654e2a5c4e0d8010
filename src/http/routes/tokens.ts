import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KeymeshError } from '../../errors.js';
import { IDP_ALGS } from '../../config/defaults.js';
import type { TokenEndpoint } from '../../metrics/recorder.js';
import { DPOP_ALGS, isUseDpopNonce } from '../../tokens/dpop.js';
import { GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE, type TokenService } from '../../tokens/token-service.js';
import { TOKEN_TYPE_SAML2_OAUTH } from '../../tokens/provider.js';
import type { HttpDeps } from '../deps.js';
import { requirePrivateChannel } from '../transport.js';
import { countOutcome } from './metrics.js';
import { tokenForm, tokenParam } from './token-forms.js';
import { answer, BASE64URL, ISSUED_HEADERS, issueToken, NO_STORE } from './token-issue.js';
import { realmPrefix } from './public-keys.js';

/**
 * The token service (API.md): `POST /token` (`client_credentials` and RFC 8693 token exchange),
 * `POST /introspect` (RFC 7662), `POST /revoke` (RFC 7009) and `POST /renew`, form-encoded; the client
 * authenticates with `client_secret_basic` or `private_key_jwt`.
 */
export function registerTokenRoutes(app: FastifyInstance, deps: HttpDeps): void {
  for (const realm of Object.keys(deps.config.realms)) registerRealm(app, deps, realm);
}

/** The endpoints of one realm under its prefix, and its RFC 8414 metadata. */
function registerRealm(app: FastifyInstance, deps: HttpDeps, realm: string): void {
  const prefix = realmPrefix(realm);
  const service = (): TokenService => {
    const tokens = deps.tokens?.get(realm);
    if (!tokens) throw tokenServiceUnavailable(deps);
    return tokens;
  };
  const counted = <R>(endpoint: TokenEndpoint, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<R>) =>
    countOutcome(deps.metrics && ((outcome: string) => deps.metrics!.tokenRequest(endpoint, outcome)), handler);
  const authenticate = (
    tokens: TokenService,
    req: FastifyRequest,
    form: { client_assertion_type?: string | undefined; client_assertion?: string | undefined },
  ) => {
    // a client secret never crosses plain HTTP off loopback (API.md)
    if (req.headers.authorization !== undefined) requirePrivateChannel(req);
    return tokens.clients.authenticate(req.headers.authorization, form, req.socket.remoteAddress ?? 'unknown');
  };

  const issuer = deps.config.realms[realm]!.issuer;
  const metadata = JSON.stringify(authorizationServerMetadata(issuer));
  const serveMetadata = (_req: FastifyRequest, reply: FastifyReply) =>
    reply
      .header('content-type', 'application/json; charset=utf-8')
      .header('cache-control', `public, max-age=${Math.floor(deps.config.jwks.maxAgeMs / 1000)}`)
      .send(metadata);
  // RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path; the suffix form stays too
  const issuerPath = new URL(issuer).pathname.replace(/\/+$/, '');
  const locations = new Set([
    `${prefix}/.well-known/oauth-authorization-server`,
    `/.well-known/oauth-authorization-server${prefix}`,
  ]);
  if (issuerPath !== '') locations.add(`/.well-known/oauth-authorization-server${issuerPath}`);
  for (const location of locations) app.get(location, serveMetadata);

  app.post(
    `${prefix}/token`,
    counted('token', async (req, reply) => {
      const tokens = service();
      const form = tokenForm.parse(req.body, 'body');
      const client = await authenticate(tokens, req, form);
      // most requests carry no proof: no call, and no await, for them
      const confirmationJkt =
        req.headers['dpop'] === undefined ? undefined : await dpopKey(tokens, req, reply, deps.config.http.publicUrl);
      const issued = await issueToken(tokens, client, form, confirmationJkt);
      // an SCT's server entropy is key material: only over HTTPS or on loopback
      if (issued.entropy) requirePrivateChannel(req);
      return reply.headers(ISSUED_HEADERS).send(JSON.stringify(answer(issued)));
    }),
  );

  app.post(
    `${prefix}/introspect`,
    counted('introspect', async (req, reply) => {
      const tokens = service();
      const form = tokenParam.parse(req.body, 'body');
      const client = await authenticate(tokens, req, form);
      return reply.headers(NO_STORE).send(await tokens.introspect(formToken(form.token), form.token_type_hint, client));
    }),
  );

  app.post(
    `${prefix}/revoke`,
    counted('revoke', async (req, reply) => {
      const tokens = service();
      const form = tokenParam.parse(req.body, 'body');
      const client = await authenticate(tokens, req, form);
      await tokens.revoke(client, formToken(form.token));
      return reply.headers(NO_STORE).send({});
    }),
  );

  app.post(
    `${prefix}/renew`,
    counted('renew', async (req, reply) => {
      const tokens = service();
      const form = tokenParam.parse(req.body, 'body');
      const client = await authenticate(tokens, req, form);
      const confirmationJkt = await dpopKey(tokens, req, reply, deps.config.http.publicUrl);
      const token = formToken(form.token);
      const renewed = await tokens.renew(client, token, confirmationJkt);
      // a SAML assertion comes back in the form it was sent: base64url (RFC 8693's saml2) or XML
      return reply
        .headers(NO_STORE)
        .send(answer(token === form.token ? renewed : { ...renewed, tokenType: TOKEN_TYPE_SAML2_OAUTH }));
    }),
  );
}

/** Why a node has no token service for a realm: it is loading its registrations, or runs without one. */
export function tokenServiceUnavailable(deps: HttpDeps): KeymeshError {
  return new KeymeshError(
    'ERR_UNAVAILABLE',
    deps.registry
      ? 'this node is loading its registrations (catching up with the cluster); try again shortly'
      : 'this node runs without the token service',
  );
}

/**
 * RFC 8414 metadata of a realm: every endpoint under the realm's issuer, so every node answers the same document
 * (a node's own URL appears nowhere).
 */
export function authorizationServerMetadata(issuer: string): Record<string, unknown> {
  return {
    issuer,
    token_endpoint: `${issuer}/token`,
    introspection_endpoint: `${issuer}/introspect`,
    revocation_endpoint: `${issuer}/revoke`,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    grant_types_supported: [GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: [...IDP_ALGS],
    introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
    introspection_endpoint_auth_signing_alg_values_supported: [...IDP_ALGS],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
    revocation_endpoint_auth_signing_alg_values_supported: [...IDP_ALGS],
    dpop_signing_alg_values_supported: [...DPOP_ALGS],
    response_types_supported: [],
  };
}

/**
 * The key a `DPoP` proof binds the token to (RFC 9449), or undefined without a proof. The proof must carry a
 * nonce of this cluster; when it lacks a fresh one, the error answer carries one in `DPoP-Nonce`. Its `htu` is
 * checked against `http.publicUrl` when set (a node behind a TLS-terminating proxy), else against this listener's
 * scheme and the `Host` header; `X-Forwarded-*` is never read.
 */
async function dpopKey(
  tokens: TokenService,
  req: FastifyRequest,
  reply: FastifyReply,
  publicUrl: string | undefined,
): Promise<string | undefined> {
  const proof = req.headers['dpop'];
  if (proof === undefined) return undefined;
  if (typeof proof !== 'string') throw new KeymeshError('ERR_INVALID_DPOP_PROOF', 'send one DPoP header');
  const path = req.url.split('?')[0];
  const url =
    publicUrl === undefined ? `${req.protocol}://${req.host}${path}` : `${publicUrl.replace(/\/+$/, '')}${path}`;
  try {
    return (await tokens.dpop.verifier.verify(proof, { method: req.method, url }, { requireNonce: true })).jkt;
  } catch (err) {
    if (isUseDpopNonce(err)) reply.header('dpop-nonce', tokens.dpop.nonces.issue()).header('cache-control', 'no-store');
    throw err;
  }
}

/**
 * A token parameter as the token operations take it: a SAML assertion sent base64url-encoded (RFC 8693 §3's
 * `saml2`) is decoded; anything else is used as sent.
 */
function formToken(token: string): string {
  if (!BASE64URL.test(token)) return token;
  const decoded = Buffer.from(token, 'base64url').toString('utf8');
  return decoded.trimStart().startsWith('<') ? decoded : token;
}
