/**
 * The forms of the token endpoints (API.md), as compiled forms (`form-rules.ts`): each request is checked by the
 * precompiled check first and by the zod schema of the same table only when that check passes it on.
 */
import { compileForm, type FieldRule, type FormRules } from '../form-rules.js';

const audience: FieldRule = { min: 1, max: 512, many: 16 };
const clientAuth = {
  client_assertion_type: { max: 256 },
  client_assertion: { max: 16_384 },
} satisfies FormRules;

interface ClientAuthFields {
  client_assertion_type?: string | undefined;
  client_assertion?: string | undefined;
}

export interface TokenForm extends ClientAuthFields {
  grant_type: string;
  audience?: string | string[] | undefined;
  resource?: string | string[] | undefined;
  scope?: string | undefined;
  requested_token_type?: string | undefined;
  subject_token?: string | undefined;
  subject_token_type?: string | undefined;
  renewable?: 'true' | 'false' | undefined;
  token_encryption?: 'jwe' | undefined;
  actor_token?: string | undefined;
  actor_token_type?: string | undefined;
  client_entropy?: string | undefined;
  key_size?: string | undefined;
  computed_key_algorithm?: string | undefined;
}

export const tokenForm = compileForm<TokenForm>({
  grant_type: { min: 1, max: 256, required: true },
  audience,
  /** RFC 8707 resource indicators: absolute URIs without a fragment, each one the client may name as an audience. */
  resource: audience,
  scope: { max: 2048 },
  requested_token_type: { min: 1, max: 256 },
  /** Up to 64 KiB: a SAML assertion (base64url) as well as a JWT. */
  subject_token: { min: 1, max: 65_536 },
  subject_token_type: { min: 1, max: 256 },
  renewable: { values: ['true', 'false'] },
  /** `jwe`: the token encrypted to its audience's POP key (a registered resource server). */
  token_encryption: { values: ['jwe'] },
  actor_token: { max: 16_384 },
  actor_token_type: { max: 256 },
  /** Security Context Tokens (WS-Trust key requirements as form parameters): base64url client entropy, key bits, PSHA1. */
  client_entropy: { pattern: { regex: /^[A-Za-z0-9_-]{1,128}$/, says: 'base64url' } },
  key_size: { pattern: { regex: /^\d{1,4}$/, says: 'a number of bits' } },
  computed_key_algorithm: { max: 256 },
  ...clientAuth,
});

export const tokenParam = compileForm<ClientAuthFields & { token: string; token_type_hint?: string | undefined }>({
  token: { min: 1, max: 65_536, required: true },
  token_type_hint: { max: 64 },
  ...clientAuth,
});
