import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { KeymeshError } from '../../errors.js';
import { IDP_ALGS } from '../../config/defaults.js';
import type { TokenEndpoint } from '../../metrics/recorder.js';
import { DPOP_ALGS, isUseDpopNonce } from '../../tokens/dpop.js';
import { GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE, type Issued, type TokenService } from '../../tokens/token-service.js';
import type { HttpDeps } from '../deps.js';
import { requirePrivateChannel } from '../transport.js';
import { parseInput } from '../validate.js';
import { countOutcome } from './metrics.js';
import { realmPrefix } from './public-keys.js';

const audience = z.string().min(1).max(512);
const clientAuth = { client_assertion_type: z.string().max(256).optional(), client_assertion: z.string().max(16_384).optional() };

const tokenForm = z.object({
  grant_type: z.string().min(1).max(256),
  audience: z.union([audience, z.array(audience).min(1).max(16)]).optional(),
  scope: z.string().max(2048).optional(),
  requested_token_type: z.string().min(1).max(256).optional(),
  subject_token: z.string().min(1).max(16_384).optional(),
  subject_token_type: z.string().min(1).max(256).optional(),
  renewable: z.enum(['true', 'false']).optional(),
  /** `jwe`: the token encrypted to its audience's POP key (a registered resource server). */
  token_encryption: z.literal('jwe').optional(),
  actor_token: z.string().max(16_384).optional(),
  actor_token_type: z.string().max(256).optional(),
  /** Security Context Tokens (WS-Trust key requirements as form parameters): base64url client entropy, key bits, PSHA1. */
  client_entropy: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/, 'base64url').optional(),
  key_size: z.string().regex(/^\d{1,4}$/, 'a number of bits').optional(),
  computed_key_algorithm: z.string().max(256).optional(),
  ...clientAuth,
});

const tokenParam = z.object({ token: z.string().min(1).max(16_384), token_type_hint: z.string().max(64).optional(), ...clientAuth });

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
    if (!tokens) throw new KeymeshError('ERR_UNAVAILABLE', 'this node runs without the token service');
    return tokens;
  };
  const noStore = { 'cache-control': 'no-store', pragma: 'no-cache' };
  const counted = <R>(endpoint: TokenEndpoint, handler: (req: FastifyRequest, reply: FastifyReply) => Promise<R>) =>
    countOutcome(deps.metrics && ((outcome: string) => deps.metrics!.tokenRequest(endpoint, outcome)), handler);
  const authenticate = (tokens: TokenService, req: FastifyRequest, form: { client_assertion_type?: string | undefined; client_assertion?: string | undefined }) => {
    // a client secret never crosses plain HTTP off loopback (API.md)
    if (req.headers.authorization !== undefined) requirePrivateChannel(req);
    return tokens.clients.authenticate(req.headers.authorization, form);
  };

  const metadata = JSON.stringify(authorizationServerMetadata(deps.config.realms[realm]!.issuer));
  app.get(`${prefix}/.well-known/oauth-authorization-server`, (_req, reply) =>
    reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', `public, max-age=${Math.floor(deps.config.jwks.maxAgeMs / 1000)}`).send(metadata));

  app.post(`${prefix}/token`, counted('token', async (req, reply) => {
    const tokens = service();
    const form = parseInput(tokenForm, req.body, 'body');
    const client = await authenticate(tokens, req, form);
    const confirmationJkt = await dpopKey(tokens, req, reply);
    const request = {
      confirmationJkt,
      audiences: form.audience === undefined ? undefined : typeof form.audience === 'string' ? [form.audience] : form.audience,
      scope: form.scope, requestedTokenType: form.requested_token_type, renewable: form.renewable === 'true',
      encrypt: form.token_encryption === 'jwe',
      keyRequirements: {
        ...(form.client_entropy ? { clientEntropy: new Uint8Array(Buffer.from(form.client_entropy, 'base64url')) } : {}),
        ...(form.key_size ? { keySize: Number(form.key_size) } : {}),
        ...(form.computed_key_algorithm ? { computedKeyAlgorithm: form.computed_key_algorithm } : {}),
      },
    };
    let issued: Issued;
    if (form.grant_type === GRANT_CLIENT_CREDENTIALS) {
      issued = await tokens.clientCredentials(client, request);
    } else if (form.grant_type === GRANT_TOKEN_EXCHANGE) {
      if (!form.subject_token || !form.subject_token_type) throw new KeymeshError('ERR_INVALID_REQUEST', 'token exchange needs subject_token and subject_token_type');
      if (form.actor_token !== undefined || form.actor_token_type !== undefined) {
        throw new KeymeshError('ERR_INVALID_REQUEST', 'actor_token is not accepted: the authenticated client is the actor');
      }
      issued = await tokens.exchange(client, { ...request, subjectToken: form.subject_token, subjectTokenType: form.subject_token_type });
    } else {
      throw new KeymeshError('ERR_UNSUPPORTED_GRANT_TYPE', `grant_type ${form.grant_type} is not supported`);
    }
    // an SCT's server entropy is key material: only over HTTPS or on loopback
    if (issued.entropy) requirePrivateChannel(req);
    return reply.headers(noStore).send(answer(issued, form.scope));
  }));

  app.post(`${prefix}/introspect`, counted('introspect', async (req, reply) => {
    const tokens = service();
    const form = parseInput(tokenParam, req.body, 'body');
    const client = await authenticate(tokens, req, form);
    return reply.headers(noStore).send(await tokens.introspect(form.token, form.token_type_hint, client));
  }));

  app.post(`${prefix}/revoke`, counted('revoke', async (req, reply) => {
    const tokens = service();
    const form = parseInput(tokenParam, req.body, 'body');
    const client = await authenticate(tokens, req, form);
    await tokens.revoke(client, form.token);
    return reply.headers(noStore).send({});
  }));

  app.post(`${prefix}/renew`, counted('renew', async (req, reply) => {
    const tokens = service();
    const form = parseInput(tokenParam, req.body, 'body');
    const client = await authenticate(tokens, req, form);
    return reply.headers(noStore).send(answer(await tokens.renew(client, form.token), undefined));
  }));
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
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'private_key_jwt'],
    dpop_signing_alg_values_supported: [...DPOP_ALGS],
    response_types_supported: [],
  };
}

/**
 * The key a `DPoP` proof binds the token to (RFC 9449), or undefined without a proof. The proof must carry a
 * nonce of this cluster; when it lacks a fresh one, the error answer carries one in `DPoP-Nonce`.
 */
async function dpopKey(tokens: TokenService, req: FastifyRequest, reply: FastifyReply): Promise<string | undefined> {
  const proof = req.headers['dpop'];
  if (proof === undefined) return undefined;
  if (typeof proof !== 'string') throw new KeymeshError('ERR_INVALID_DPOP_PROOF', 'send one DPoP header');
  const url = `${req.protocol}://${req.host}${req.url.split('?')[0]}`;
  try {
    return (await tokens.dpop.verifier.verify(proof, { method: req.method, url }, { requireNonce: true })).jkt;
  } catch (err) {
    if (isUseDpopNonce(err)) reply.header('dpop-nonce', tokens.dpop.nonces.issue()).header('cache-control', 'no-store');
    throw err;
  }
}

/** The RFC 6749 / 8693 answer; an SCT's server entropy rides along (base64url) when the provider returns it. */
function answer(issued: Issued, scope: string | undefined): Record<string, unknown> {
  const sct = issued.keySize !== undefined;
  return {
    access_token: issued.token,
    issued_token_type: issued.tokenType,
    token_type: sct ? 'N_A' : issued.bound ? 'DPoP' : 'Bearer',
    expires_in: issued.lifetime,
    ...(scope ? { scope } : {}),
    ...(issued.entropy ? { entropy: Buffer.from(issued.entropy).toString('base64url'), key_size: issued.keySize, computed_key: issued.computedKey } : {}),
  };
}
