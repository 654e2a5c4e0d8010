/**
 * What `POST /token` does once its client is authenticated, shared by the fastify route (`tokens.ts`) and the fast
 * path in front of fastify (`token-fast-path.ts`): the grant, the RFC 6749 / 8693 answer and its headers.
 */
import { KeymeshError } from '../../errors.js';
import type { ClientConfig } from '../../tokens/clients.js';
import { TOKEN_TYPE_SAML2_OAUTH, type KeyRequirements } from '../../tokens/provider.js';
import { SAML_TOKEN_TYPES } from '../../tokens/saml-provider.js';
import {
  GRANT_CLIENT_CREDENTIALS,
  GRANT_TOKEN_EXCHANGE,
  type Issued,
  type TokenService,
} from '../../tokens/token-service.js';
import type { TokenForm } from './token-forms.js';

/** Headers of every token endpoint answer (RFC 6749 §5.1). */
export const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' };
/** The headers of an issued token's answer, serialised here (fastify's serializer never runs on the hot path). */
export const ISSUED_HEADERS = { ...NO_STORE, 'content-type': 'application/json; charset=utf-8' };
/** Key requirements of a request that names none (most): one shared, frozen object. */
const NO_KEY_REQUIREMENTS = Object.freeze({});

export const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/**
 * The token `form` asks for, issued to `client` (already authenticated), bound to `confirmationJkt` when a DPoP
 * proof came with it.
 * @throws KeymeshError `ERR_INVALID_REQUEST`, `ERR_UNSUPPORTED_GRANT_TYPE`, and whatever the grant throws.
 */
export async function issueToken(
  tokens: TokenService,
  client: ClientConfig,
  form: TokenForm,
  confirmationJkt: string | undefined,
): Promise<Issued> {
  const request = {
    confirmationJkt,
    audiences: targets(form.audience, form.resource),
    scope: form.scope,
    requestedTokenType: form.requested_token_type,
    renewable: form.renewable === 'true',
    encrypt: form.token_encryption === 'jwe',
    keyRequirements: keyRequirementsOf(form),
  };
  if (form.grant_type === GRANT_CLIENT_CREDENTIALS) return tokens.clientCredentials(client, request);
  if (form.grant_type !== GRANT_TOKEN_EXCHANGE) {
    throw new KeymeshError(
      'ERR_UNSUPPORTED_GRANT_TYPE',
      `the grant_type is not supported; use ${GRANT_CLIENT_CREDENTIALS} or ${GRANT_TOKEN_EXCHANGE}`,
    );
  }
  if (!form.subject_token || !form.subject_token_type)
    throw new KeymeshError('ERR_INVALID_REQUEST', 'token exchange needs subject_token and subject_token_type');
  if (form.actor_token !== undefined || form.actor_token_type !== undefined) {
    throw new KeymeshError('ERR_INVALID_REQUEST', 'actor_token is not accepted: the authenticated client is the actor');
  }
  return tokens.exchange(client, {
    ...request,
    subjectToken:
      form.subject_token_type === TOKEN_TYPE_SAML2_OAUTH ? fromBase64url(form.subject_token) : form.subject_token,
    subjectTokenType: form.subject_token_type,
  });
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
export function answer(issued: Issued): Record<string, unknown> {
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
