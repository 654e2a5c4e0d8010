/**
 * SAML 2.0 assertions (DESIGN §9, the seed STS's second token provider): issued, validated, renewed and cancelled
 * like access tokens, through the same operations.
 *
 * Issue: an assertion signed by the realm's active signing key (XML-DSig, exclusive C14N, RSA-SHA256 for an RS256
 * realm, ECDSA-SHA256 for an ES256 one; `src/saml/`), its `Issuer` the realm's issuer, its subject the principal,
 * its `AudienceRestriction` the audiences (`appliesTo`), `NotBefore`/`NotOnOrAfter` its lifetime (capped like an
 * access token's), its attributes what the claims manager adds plus `client_id` and `scope`. The subject is
 * confirmed bearer, or holder-of-key with the requester's public key (WS-Trust `UseKey`).
 *
 * What an access token carries signed in reserved claims (the client, scope, actor, renewability, chain) an
 * assertion carries in a record of the replicated token store under `saml/<sha256(ID)>`, written before the
 * assertion is handed out and kept until it expires. So every node answers for it: an assertion whose record is
 * absent is not one this realm issued (or it expired), and revocation and renewal go by the record's token id,
 * exactly as for access tokens.
 *
 * `read` turns a verified assertion and its record into the payload an access token of the same content would
 * have, so renewal, revocation, introspection and token exchange treat both alike.
 */
import { createHash, type KeyObject, randomUUID } from 'node:crypto';
import type { JSONWebKeySet, JWTPayload } from 'jose';
import { pack } from 'msgpackr';
import { z } from 'zod';
import { KeymeshError } from '../errors.js';
import { samlLibrary } from '../saml/lazy.js';
import { chainRevoked, MAX_CHAIN_LENGTH } from './chain.js';
import { lifetimeOf } from './jwt-provider.js';
import { decodeStoreRecord } from './register-store.js';
import { signatureKeys } from './signature-keys.js';
import {
  ClaimsManager,
  TOKEN_TYPE_SAML2,
  TOKEN_TYPE_SAML2_OAUTH,
  type TokenProvider,
  type TokenProviderParameters,
  type TokenProviderResponse,
  type TokenStore,
  type TokenValidator,
  type TokenValidatorResponse,
} from './provider.js';

export const SAML_TOKEN_TYPES: ReadonlySet<string> = new Set([TOKEN_TYPE_SAML2, TOKEN_TYPE_SAML2_OAUTH]);
/** Largest assertion read: 64 KiB. */
export const SAML_MAX_BYTES = 64 * 1024;
const RECORD_VERSION = 1;

export interface SamlProviderOptions {
  readonly tokenStore: TokenStore;
  /** The realm's published signing keys as a JWK Set, and a value that changes whenever they do. */
  readonly verificationKeys: (realm: string) => { version: string | number; jwks: () => JSONWebKeySet };
  readonly issuer: (realm: string) => string;
  readonly isRevoked: (jti: string) => Promise<boolean>;
  readonly now: () => number;
  readonly clockSkewS: number;
}

const actorSchema: z.ZodType<{ sub: string; act?: unknown }> = z.lazy(() =>
  z.strictObject({ sub: z.string().max(1024), act: actorSchema.optional() }),
);
const recordSchema = z.strictObject({
  v: z.literal(RECORD_VERSION),
  realm: z.string().max(64),
  jti: z.string().max(64),
  sub: z.string().max(1024),
  aud: z.array(z.string().max(512)).max(64),
  client_id: z.string().max(256),
  iat: z.number().int(),
  exp: z.number().int(),
  scope: z.string().max(16_384).optional(),
  act: actorSchema.optional(),
  renewable: z.literal(true).optional(),
  chain: z.strictObject({ jti: z.array(z.string().max(64)).max(MAX_CHAIN_LENGTH), exp: z.number().int() }).optional(),
  cnf: z.strictObject({ jwk: z.record(z.string(), z.unknown()) }).optional(),
});
type SamlRecord = z.output<typeof recordSchema>;

/**
 * `key` when it can sign SAML assertions (RS256, ES256).
 * @throws KeymeshError `ERR_UNSUPPORTED_TOKEN_TYPE` for any other algorithm (an EdDSA realm).
 */
export function samlSigningKey<K extends { readonly alg: string }>(key: K): K {
  if (key.alg !== 'RS256' && key.alg !== 'ES256')
    throw new KeymeshError(
      'ERR_UNSUPPORTED_TOKEN_TYPE',
      `SAML assertions need an RS256 or ES256 realm signing key; this realm signs with ${key.alg}`,
    );
  return key;
}

/** Whether `token` looks like XML rather than a compact JWT or an SCT identifier. */
export function looksLikeXml(token: string): boolean {
  return token.trimStart().startsWith('<');
}

/** The token-store id of an assertion: its ID hashed, so the store's keys are bounded and uniform. */
export function samlStoreId(assertionId: string): string {
  return `saml/${createHash('sha256').update(assertionId).digest('base64url')}`;
}

export class SamlTokenProvider implements TokenProvider, TokenValidator {
  readonly #o: SamlProviderOptions;
  readonly #keys = new Map<string, { version: string | number; byKid: Map<string, KeyObject> }>();

  constructor(options: SamlProviderOptions) {
    this.#o = options;
  }

  canHandleToken(tokenType: string): boolean {
    return SAML_TOKEN_TYPES.has(tokenType);
  }

  async createToken(params: TokenProviderParameters): Promise<TokenProviderResponse> {
    const { stsProperties: sts, tokenRequirements: req, principal, keyRequirements: keyReq } = params;
    if (params.encryptionProperties)
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        'SAML assertions are issued signed, not encrypted: ask for a JWE access token',
      );
    if (keyReq.confirmationJkt)
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        'a SAML assertion carries no DPoP binding: send WS-Trust UseKey for holder-of-key',
      );
    const { now, exp } = lifetimeOf(sts, req);
    const jti = req.tokenId ?? randomUUID();
    const audiences = [params.appliesTo].flat();
    const scope = req.scope && req.scope.length > 0 ? req.scope.join(' ') : undefined;
    const record: SamlRecord = {
      v: RECORD_VERSION,
      realm: params.realm,
      jti,
      sub: principal.subject,
      aud: audiences,
      client_id: principal.clientId,
      iat: now,
      exp,
      ...(scope ? { scope } : {}),
      ...(principal.actor ? { act: principal.actor } : {}),
      ...(req.renewable ? { renewable: true as const } : {}),
      ...(req.chain ? { chain: { jti: [...req.chain.jti], exp: req.chain.exp } } : {}),
      ...(keyReq.confirmationKey ? { cnf: { jwk: { ...keyReq.confirmationKey } } } : {}),
    };
    const key = samlSigningKey(await sts.signingKey());
    const { buildAssertion, signAssertion } = await samlLibrary();
    const id = `_${jti}`;
    const doc = buildAssertion({
      id,
      issuer: sts.issuer,
      issueInstant: now,
      subject: { nameId: principal.subject },
      notBefore: now,
      notOnOrAfter: exp,
      audiences,
      attributes: {
        ...(await params.claimsManager.claims(params)),
        client_id: principal.clientId,
        ...(scope ? { scope } : {}),
      },
      confirmation: keyReq.confirmationKey
        ? { method: 'holder-of-key', publicKey: keyReq.confirmationKey }
        : { method: 'bearer' },
      authnInstant: now,
    });
    const token = signAssertion(doc, key);
    // the record before the assertion is handed out, so it is one every node can answer for; one that could not be
    // built or signed leaves no record behind
    await params.tokenStore.put(samlStoreId(id), pack(record), exp);
    const reference = { identifier: id, valueType: req.tokenType };
    return {
      token,
      tokenId: jti,
      lifetime: exp - now,
      expiresAt: exp,
      computedKey: false,
      attachedReference: reference,
      unattachedReference: reference,
    };
  }

  /**
   * The payload an access token of the same content would have: the assertion verified (signature by a published
   * key of the realm, issuer, conditions) and its record read.
   * @throws KeymeshError `ERR_INVALID_TOKEN` with the reason (and `ERR_INVALID_XML` for refused XML).
   */
  async read(token: string, realm: string): Promise<JWTPayload> {
    const { verifyAssertion } = await samlLibrary();
    const verified = verifyAssertion(token, {
      keys: (kid) => this.#keysOf(realm, kid),
      issuer: this.#o.issuer(realm),
      now: this.#o.now(),
      clockSkewS: this.#o.clockSkewS,
      maxBytes: SAML_MAX_BYTES,
    });
    const raw = await this.#o.tokenStore.get(samlStoreId(verified.id));
    if (!raw) throw new KeymeshError('ERR_INVALID_TOKEN', 'the assertion is not one this realm issued, or it expired');
    const record = decodeStoreRecord(raw, recordSchema, 'a SAML assertion record', 8192);
    if (record.realm !== realm || `_${record.jti}` !== verified.id || record.sub !== verified.subject.nameId)
      throw new KeymeshError('ERR_INVALID_TOKEN', 'the assertion does not match what this realm recorded of it');
    const attributes = Object.fromEntries(
      Object.entries(verified.attributes)
        .filter(([name]) => !ClaimsManager.RESERVED.has(name))
        .map(([name, values]) => [name, values.length === 1 ? values[0] : [...values]]),
    );
    const { v: _v, realm: _r, aud, ...reserved } = record;
    return {
      ...attributes,
      ...reserved,
      iss: verified.issuer,
      aud: aud.length === 1 ? aud[0]! : aud,
      ...(verified.notBefore !== undefined ? { nbf: verified.notBefore } : {}),
    };
  }

  async validateToken(token: string, _tokenType: string, realm: string): Promise<TokenValidatorResponse> {
    if (!looksLikeXml(token)) return { active: false };
    let payload: JWTPayload;
    try {
      // the record's chain was checked by its schema when it was read
      payload = await this.read(token, realm);
    } catch (err) {
      // a store that cannot answer is an error, never "inactive"
      if (err instanceof KeymeshError && (err.code === 'ERR_INVALID_TOKEN' || err.code === 'ERR_INVALID_XML'))
        return { active: false };
      throw err;
    }
    if (await chainRevoked(payload, this.#o.isRevoked)) return { active: false };
    const tokenType = payload['cnf'] ? 'holder-of-key' : 'Bearer';
    return { active: true, claims: { ...payload, token_type: tokenType, issued_token_type: TOKEN_TYPE_SAML2 } };
  }

  #keysOf(realm: string, kid: string | undefined): KeyObject[] {
    const { version, jwks } = this.#o.verificationKeys(realm);
    let cached = this.#keys.get(realm);
    if (!cached || cached.version !== version) {
      cached = { version, byKid: signatureKeys(jwks()) };
      this.#keys.set(realm, cached);
    }
    if (kid !== undefined) {
      const key = cached.byKid.get(kid);
      return key ? [key] : [];
    }
    return [...cached.byKid.values()];
  }
}
