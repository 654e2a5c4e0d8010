import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { KeymeshError } from '../../errors.js';
import { IDP_ALGS } from '../../config/defaults.js';
import type { TokenEndpoint } from '../../metrics/recorder.js';
import { DPOP_ALGS, isUseDpopNonce } from '../../tokens/dpop.js';
import {
  GRANT_CLIENT_CREDENTIALS,
  GRANT_TOKEN_EXCHANGE,
  type Issued,
  type TokenService,
} from '../../tokens/token-service.js';
import { TOKEN_TYPE_SAML2_OAUTH, type KeyRequirements } from '../../tokens/provider.js';
import { SAML_TOKEN_TYPES } from '../../tokens/saml-provider.js';
import type { HttpDeps } from '../deps.js';
import { requirePrivateChannel } from '../transport.js';
import { countOutcome } from './metrics.js';
import { tokenForm, tokenParam, type TokenForm } from './token-forms.js';
import { realmPrefix } from './public-keys.js';

/** Headers of every token endpoint answer (RFC 6749 §5.1). */
const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };
/** The headers of an issued token's answer, serialised here (fastify's serializer never runs on the hot path). */
const ISSUED_HEADERS = { ...NO_STORE, 'content-type': 'application/json; charset=utf-8' };
/** Key requirements of a request that names none (most): one shared, frozen object. */
const NO_KEY_REQUIREMENTS = Object.freeze({});

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
      const request = {
        confirmationJkt,
        audiences: targets(form.audience, form.resource),
        scope: form.scope,
        requestedTokenType: form.requested_token_type,
        renewable: form.renewable === 'true',
        encrypt: form.token_encryption === 'jwe',
        keyRequirements: keyRequirementsOf(form),
      };
      let issued: Issued;
      if (form.grant_type === GRANT_CLIENT_CREDENTIALS) {
        issued = await tokens.clientCredentials(client, request);
      } else if (form.grant_type === GRANT_TOKEN_EXCHANGE) {
        if (!form.subject_token || !form.subject_token_type)
          throw new KeymeshError('ERR_INVALID_REQUEST', 'token exchange needs subject_token and subject_token_type');
        if (form.actor_token !== undefined || form.actor_token_type !== undefined) {
          throw new KeymeshError(
            'ERR_INVALID_REQUEST',
            'actor_token is not accepted: the authenticated client is the actor',
          );
        }
        issued = await tokens.exchange(client, {
          ...request,
          subjectToken:
            form.subject_token_type === TOKEN_TYPE_SAML2_OAUTH ? fromBase64url(form.subject_token) : form.subject_token,
          subjectTokenType: form.subject_token_type,
        });
      } else {
        throw new KeymeshError(
          'ERR_UNSUPPORTED_GRANT_TYPE',
          `the grant_type is not supported; use ${GRANT_CLIENT_CREDENTIALS} or ${GRANT_TOKEN_EXCHANGE}`,
        );
      }
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

/** The SCT key requirements a form names (WS-Trust's, as form parameters). */
function keyRequirementsOf(form: TokenForm): KeyRequirements {
  if (!form.client_entropy && !form.key_size && !form.computed_key_algorithm) return NO_KEY_REQUIREMENTS;
  return {
    ...(form.client_entropy ? { clientEntropy: new Uint8Array(Buffer.from(form.client_entropy, 'base64url')) } : {}),
    ...(form.key_size ? { keySize: Number(form.key_size) } : {}),
    ...(form.computed_key_algorithm ? { computedKeyAlgorithm: form.computed_key_algorithm } : {}),
  };
}

/**
 * The audiences a request names: `audience` and RFC 8707 `resource` parameters together; undefined when neither.
 * @throws KeymeshError `ERR_UNKNOWN_AUDIENCE` (invalid_target) for a resource that is not an absolute URI without a fragment.
 */
export function targets(
  audience: string | string[] | undefined,
  resource: string | string[] | undefined,
): string[] | undefined {
  if (audience === undefined && resource === undefined) return undefined;
  const resources = resource === undefined ? [] : [resource].flat();
  for (const r of resources) {
    if (!URL.canParse(r) || r.includes('#'))
      throw new KeymeshError(
        'ERR_UNKNOWN_AUDIENCE',
        'a resource must be an absolute URI without a fragment (RFC 8707 §2)',
      );
  }
  const all = [...(audience === undefined ? [] : [audience].flat()), ...resources];
  return all.length === 0 ? undefined : all;
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

const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/** @throws KeymeshError `ERR_INVALID_REQUEST` when not base64url of UTF-8 text. */
function fromBase64url(token: string): string {
  if (!BASE64URL.test(token))
    throw new KeymeshError('ERR_INVALID_REQUEST', 'a saml2 token is sent base64url-encoded (RFC 8693 §3)');
  return Buffer.from(token, 'base64url').toString('utf8');
}

/**
 * The RFC 6749 / 8693 answer; an SCT's server entropy rides along (base64url) when the provider returns it. A SAML
 * assertion asked for as RFC 8693's `saml2` is base64url-encoded (§3); as `urn:oasis:names:tc:SAML:2.0:assertion`
 * it is the XML itself. Neither is an access token (`token_type` `N_A`).
 */
function answer(issued: Issued): Record<string, unknown> {
  const notAccessToken = issued.keySize !== undefined || SAML_TOKEN_TYPES.has(issued.tokenType);
  const out: Record<string, unknown> = {
    access_token:
      issued.tokenType === TOKEN_TYPE_SAML2_OAUTH ? Buffer.from(issued.token).toString('base64url') : issued.token,
    issued_token_type: issued.tokenType,
    token_type: notAccessToken ? 'N_A' : issued.bound ? 'DPoP' : 'Bearer',
    expires_in: issued.lifetime,
  };
  if (issued.scope) out['scope'] = issued.scope;
  if (issued.entropy) {
    out['entropy'] = Buffer.from(issued.entropy).toString('base64url');
    out['key_size'] = issued.keySize;
    out['computed_key'] = issued.computedKey;
  }
  return out;
}
