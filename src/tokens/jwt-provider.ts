/**
 * JWT access tokens (RFC 9068): `typ: at+jwt`, signed by the realm's active signing key (so the activation gate
 * applies: the key is one every live node and a majority of the map already publish, and the token verifies at
 * every node and at any relying party that fetched any node's JWKS).
 *
 * Claims: `iss`, `sub`, `aud` (= `appliesTo`), `client_id`, `iat`, `exp`, `jti`, `scope` when asked, `act` for
 * on-behalf-of, `cnf.jkt` for a DPoP-bound token, and whatever the claims manager adds. The lifetime is the
 * requested one (default `DEFAULT_ACCESS_TOKEN_LIFETIME_S`), never beyond the realm's maximum, and never past
 * `notAfter` (a token made from another never outlives it). Asked to encrypt, the signed JWT is wrapped in a
 * JWE to the recipient's POP key (`cty: JWT`).
 *
 * Validation verifies with `jose` against this node's own published keys (no network), checks `typ`, issuer and
 * expiry, and asks `isRevoked` about the `jti` and every `jti` of its chain (`chain.ts`).
 */
import { randomUUID } from 'node:crypto';
import { CompactEncrypt, createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload } from 'jose';
import { KeymeshError } from '../errors.js';
import { chainOf, chainRevoked } from './chain.js';
import { whyRefused } from './jose-reasons.js';
import { signJws, type SigningKey } from './jws-signer.js';
import {
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_JWT,
  type StsProperties,
  type TokenProvider,
  type TokenRequirements,
  type TokenProviderParameters,
  type TokenProviderResponse,
  type TokenValidator,
  type TokenValidatorResponse,
} from './provider.js';

/** Lifetime of an access token when the request names none. Default is 300 s. */
export const DEFAULT_ACCESS_TOKEN_LIFETIME_S = 300;

/**
 * When a token issued now ends (seconds since the epoch): the requested lifetime (default
 * `DEFAULT_ACCESS_TOKEN_LIFETIME_S`), never beyond the realm's maximum, `notAfter` or the chain's expiry.
 * @throws KeymeshError `ERR_INVALID_GRANT` when that is not after now (the token it is made from expired).
 */
export function lifetimeOf(sts: StsProperties, req: TokenRequirements): { now: number; exp: number } {
  const now = Math.floor(sts.now() / 1000);
  const requested = req.lifetimeS ?? DEFAULT_ACCESS_TOKEN_LIFETIME_S;
  const exp = Math.min(
    now + Math.min(requested, sts.maxLifetimeS),
    req.notAfter ?? Infinity,
    req.chain?.exp ?? Infinity,
  );
  if (exp <= now) throw new KeymeshError('ERR_INVALID_GRANT', 'the token it would be made from has expired');
  return { now, exp };
}

export interface JwtProviderOptions {
  /** The realm's published signing keys as a JWK Set, and a value that changes whenever they do. */
  readonly verificationKeys: (realm: string) => { version: string | number; jwks: () => JSONWebKeySet };
  /** The realm's issuer. */
  readonly issuer: (realm: string) => string;
  /** Whether the token with this `jti` was revoked. */
  readonly isRevoked: (jti: string) => Promise<boolean>;
  readonly now: () => number;
  readonly clockSkewS: number;
}

export class JwtAccessTokenProvider implements TokenProvider, TokenValidator {
  readonly #o: JwtProviderOptions;
  readonly #keySets = new Map<string, { version: string | number; keys: ReturnType<typeof createLocalJWKSet> }>();

  constructor(options: JwtProviderOptions) {
    this.#o = options;
  }

  canHandleToken(tokenType: string): boolean {
    return tokenType === TOKEN_TYPE_JWT || tokenType === TOKEN_TYPE_ACCESS_TOKEN;
  }

  async createToken(params: TokenProviderParameters): Promise<TokenProviderResponse> {
    const { stsProperties: sts, tokenRequirements: req, principal } = params;
    const { now, exp } = lifetimeOf(sts, req);
    const jti = req.tokenId ?? randomUUID();
    // set field by field (no object spreads on the hot path): the claims handlers' first, then the service's own
    const payload: Record<string, unknown> = await params.claimsManager.claims(params);
    payload['iss'] = sts.issuer;
    payload['sub'] = principal.subject;
    payload['aud'] = params.appliesTo;
    payload['client_id'] = principal.clientId;
    payload['iat'] = now;
    payload['exp'] = exp;
    payload['jti'] = jti;
    if (req.scope && req.scope.length > 0) payload['scope'] = req.scope.join(' ');
    if (principal.actor) payload['act'] = principal.actor;
    const jkt = params.keyRequirements.confirmationJkt;
    if (jkt) payload['cnf'] = { jkt };
    if (req.renewable) payload['renewable'] = true;
    if (req.chain) payload['chain'] = { jti: [...req.chain.jti], exp: req.chain.exp };
    const key: SigningKey = await sts.signingKey();
    let token = signJws(payload, key, 'at+jwt');
    const enc = params.encryptionProperties;
    if (enc) {
      token = await new CompactEncrypt(new TextEncoder().encode(token))
        .setProtectedHeader({ alg: enc.alg, enc: 'A256GCM', cty: 'JWT', ...(enc.kid ? { kid: enc.kid } : {}) })
        .encrypt(enc.key);
    }
    const reference = { identifier: jti, valueType: req.tokenType };
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
   * Verifies a keymesh access token of `realm`.
   * @throws KeymeshError `ERR_INVALID_TOKEN` with the reason.
   */
  async verify(token: string, realm: string): Promise<JWTPayload> {
    try {
      const { payload } = await jwtVerify(token, this.#keys(realm), {
        issuer: this.#o.issuer(realm),
        typ: 'at+jwt',
        clockTolerance: this.#o.clockSkewS,
        currentDate: new Date(this.#o.now()),
        requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
      });
      return payload;
    } catch (err) {
      throw new KeymeshError('ERR_INVALID_TOKEN', whyRefused(err), { cause: err });
    }
  }

  async validateToken(token: string, _tokenType: string, realm: string): Promise<TokenValidatorResponse> {
    let payload: JWTPayload;
    try {
      payload = await this.verify(token, realm);
    } catch {
      return { active: false };
    }
    // a malformed chain is not a token of ours; a revocation lookup that fails (no majority) is an error, never
    // "inactive": a valid token must not be refused because the register could not answer
    let chain;
    try {
      chain = chainOf(payload);
    } catch {
      return { active: false };
    }
    if (await chainRevoked(payload, this.#o.isRevoked, chain)) return { active: false };
    // Object.assign, not a spread that adds a field: V8 takes a slow path for that on every introspection
    return { active: true, claims: Object.assign({}, payload, { token_type: payload['cnf'] ? 'DPoP' : 'Bearer' }) };
  }

  #keys(realm: string): ReturnType<typeof createLocalJWKSet> {
    const { version, jwks } = this.#o.verificationKeys(realm);
    const cached = this.#keySets.get(realm);
    if (cached && cached.version === version) return cached.keys;
    const keys = createLocalJWKSet(jwks());
    this.#keySets.set(realm, { version, keys });
    return keys;
  }
}
