/**
 * The token service's operations (DESIGN §9, API.md) for authenticated clients of one realm: issue
 * (`client_credentials` and RFC 8693 token exchange with on-behalf-of), validate (RFC 7662 introspection), renew
 * (`/renew`, for tokens issued as renewable) and cancel (RFC 7009 revocation).
 *
 * Issue hands a `TokenProviderParameters` to the provider registered for the requested token type. Audiences must
 * be ones the client is registered for (its first by default); a token made from another (exchange, renewal) never
 * widens audience or scope and never outlives it. A revocation is a write-once record `revoked/<jti>` on the
 * register, so every node, including one that was down, refuses the token from then on.
 */
import { KeymeshError } from '../errors.js';
import type { ClientConfig, ClientRegistry } from './clients.js';
import type { DpopNonces, DpopVerifier } from './dpop.js';
import type { JwtAccessTokenProvider } from './jwt-provider.js';
import {
  ClaimsManager, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_SCT_200512, type EncryptionProperties, type KeyRequirements, type Principal, type ValidationCaller, type StsProperties, type TokenProviders, type TokenProviderResponse, type TokenStore,
} from './provider.js';
import type { Subject, SubjectTokens } from './subject-tokens.js';

export const GRANT_CLIENT_CREDENTIALS = 'client_credentials';
export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

const SCT_TYPES = new Set(['http://schemas.xmlsoap.org/ws/2005/02/sc/sct', TOKEN_TYPE_SCT_200512]);

export interface TokenServiceOptions {
  readonly realm: string;
  readonly clients: ClientRegistry;
  readonly providers: TokenProviders;
  readonly jwt: JwtAccessTokenProvider;
  readonly subjects: SubjectTokens;
  readonly sts: StsProperties;
  readonly tokenStore: TokenStore;
  readonly isRevoked: (jti: string) => Promise<boolean>;
  /** Write-once revocation record of `jti`, kept until `expiresAt` (seconds). */
  readonly recordRevocation: (jti: string, expiresAt: number) => Promise<void>;
  /** The POP encryption key of a registered resource server's audience. @throws `ERR_UNKNOWN_AUDIENCE`, `ERR_POP_UNAVAILABLE` */
  readonly encryptionFor: (audience: string) => Promise<EncryptionProperties>;
  /** Who a validating client is: the audiences it serves as a registered resource server, and its POP key. */
  readonly caller: (client: ClientConfig) => ValidationCaller;
  /** RFC 9449: proofs at the token endpoint and the cluster-wide nonces they must carry. */
  readonly dpop: { readonly verifier: DpopVerifier; readonly nonces: DpopNonces };
}

export interface IssueRequest {
  readonly audiences?: readonly string[] | undefined;
  readonly scope?: string | undefined;
  readonly requestedTokenType?: string | undefined;
  readonly renewable?: boolean | undefined;
  /** Key size, client entropy and computed-key algorithm (Security Context Tokens). */
  readonly keyRequirements?: KeyRequirements | undefined;
  /** The thumbprint of a verified DPoP proof's key: the token is bound to it (`cnf.jkt`). */
  readonly confirmationJkt?: string | undefined;
  /** Issue the token encrypted (a JWE) to its audience's POP key; the audience must be a registered resource server. */
  readonly encrypt?: boolean | undefined;
}

export interface ExchangeRequest extends IssueRequest {
  readonly subjectToken: string;
  readonly subjectTokenType: string;
}

/** What was issued, its type, and whether it is bound to a DPoP key. */
export type Issued = TokenProviderResponse & { tokenType: string; bound: boolean };

export class TokenService {
  readonly #o: TokenServiceOptions;

  constructor(options: TokenServiceOptions) {
    this.#o = options;
  }

  get clients(): ClientRegistry {
    return this.#o.clients;
  }

  get dpop(): TokenServiceOptions['dpop'] {
    return this.#o.dpop;
  }

  /**
   * `client_credentials`: a token about the client itself.
   * @throws KeymeshError `ERR_UNAUTHORIZED_CLIENT`, `ERR_UNKNOWN_AUDIENCE`, `ERR_UNSUPPORTED_TOKEN_TYPE`.
   */
  async clientCredentials(client: ClientConfig, request: IssueRequest): Promise<Issued> {
    this.#mayUse(client, GRANT_CLIENT_CREDENTIALS);
    const audiences = this.#audiences(client.audiences, request.audiences, 'it is registered for');
    const scope = splitScope(request.scope);
    return this.#issue(client, { subject: client.clientId, clientId: client.clientId }, audiences, scope, undefined, request);
  }

  /**
   * RFC 8693 token exchange, on behalf of the subject token's user.
   * @throws KeymeshError `ERR_INVALID_GRANT`, `ERR_UNAUTHORIZED_CLIENT`, `ERR_UNKNOWN_AUDIENCE`, `ERR_INVALID_SCOPE`,
   *   `ERR_UNSUPPORTED_TOKEN_TYPE`.
   */
  async exchange(client: ClientConfig, request: ExchangeRequest): Promise<Issued> {
    this.#mayUse(client, GRANT_TOKEN_EXCHANGE);
    const subject = await this.#o.subjects.check(client, request.subjectToken, request.subjectTokenType);
    const audiences = this.#audiences(subject.audiences, request.audiences, 'the subject token allows');
    const scope = narrowScope(splitScope(request.scope), subject);
    const principal: Principal = { subject: subject.subject, clientId: client.clientId, ...(subject.actor ? { actor: subject.actor } : {}), claims: subject.claims };
    return this.#issue(client, principal, audiences, scope, subject.notAfter, request);
  }

  /**
   * `/renew`: a new token like `token` with a new expiry, for the client it was issued to, only when it was issued
   * as renewable and has not expired or been revoked.
   * @throws KeymeshError `ERR_INVALID_GRANT`, `ERR_UNAUTHORIZED_CLIENT`.
   */
  async renew(client: ClientConfig, token: string): Promise<Issued> {
    let payload;
    try {
      payload = await this.#o.jwt.verify(token, this.#o.realm);
    } catch (err) {
      throw new KeymeshError('ERR_INVALID_GRANT', (err as Error).message, { cause: err });
    }
    if (payload['client_id'] !== client.clientId) throw new KeymeshError('ERR_UNAUTHORIZED_CLIENT', 'a client may renew only tokens issued to it');
    if (payload['renewable'] !== true) throw new KeymeshError('ERR_INVALID_GRANT', 'the token was not issued as renewable');
    if (await this.#o.isRevoked(payload.jti!)) throw new KeymeshError('ERR_INVALID_GRANT', 'the token was revoked');
    const { iss: _i, sub, aud, exp, iat, jti: _j, client_id: _c, act, cnf, scope, renewable: _r, ...claims } = payload as Record<string, unknown>;
    const principal: Principal = { subject: sub as string, clientId: client.clientId, ...(act ? { actor: act as Principal['actor'] } : {}), claims };
    const lifetimeS = (exp as number) - (iat as number);
    const audiences = Array.isArray(aud) ? (aud as string[]) : [aud as string];
    const jkt = (cnf as { jkt?: string } | undefined)?.jkt;
    return this.#issue(client, principal, audiences, splitScope(scope as string | undefined), undefined, { renewable: true }, { lifetimeS, ...(jkt ? { jkt } : {}) });
  }

  /**
   * RFC 7662: `{active: false}` for anything this realm did not issue or that is expired or revoked. An SCT (its
   * `urn:uuid:` identifier, or the SCT type as `token_type_hint`) is validated by its provider: the resource server
   * it was issued for also gets its key, as `key_jwe` encrypted to that server's POP key.
   */
  async introspect(token: string, hint: string | undefined, client: ClientConfig): Promise<Record<string, unknown>> {
    const sct = token.startsWith('urn:uuid:') || (hint !== undefined && SCT_TYPES.has(hint));
    const type = sct ? TOKEN_TYPE_SCT_200512 : TOKEN_TYPE_ACCESS_TOKEN;
    const result = await this.#o.providers.validator(type, this.#o.realm).validateToken(token, type, this.#o.realm, this.#o.caller(client));
    if (!result.active) return { active: false };
    return { active: true, ...result.claims, ...(result.keyJwe ? { key_jwe: result.keyJwe } : {}) };
  }

  /**
   * RFC 7009: revokes a token this realm issued. Answers the same for unknown or invalid tokens (the spec's
   * "invalid tokens do not cause an error"), but a client may revoke only its own tokens.
   */
  async revoke(client: ClientConfig, token: string): Promise<void> {
    let payload;
    try {
      payload = await this.#o.jwt.verify(token, this.#o.realm);
    } catch {
      return;
    }
    if (payload['client_id'] !== client.clientId) throw new KeymeshError('ERR_UNAUTHORIZED_CLIENT', 'a client may revoke only tokens issued to it');
    await this.#o.recordRevocation(payload.jti!, payload.exp!);
  }

  #mayUse(client: ClientConfig, grant: string): void {
    if (!client.grants.includes(grant)) throw new KeymeshError('ERR_UNAUTHORIZED_CLIENT', `client ${client.clientId} may not use the ${grant} grant`);
  }

  /** The requested audiences (default: the first allowed), each one allowed. */
  #audiences(allowed: readonly string[], requested: readonly string[] | undefined, why: string): string[] {
    const audiences = requested && requested.length > 0 ? [...new Set(requested)] : allowed.slice(0, 1);
    if (audiences.length === 0) throw new KeymeshError('ERR_UNKNOWN_AUDIENCE', 'no audience to issue the token for');
    for (const a of audiences) {
      if (!allowed.includes(a)) throw new KeymeshError('ERR_UNKNOWN_AUDIENCE', `audience ${a} is not one ${why}`);
    }
    return audiences;
  }

  async #issue(
    client: ClientConfig, principal: Principal, audiences: readonly string[], scope: readonly string[] | undefined, notAfter: number | undefined,
    request: IssueRequest, renewal: { lifetimeS?: number; jkt?: string } = {},
  ): Promise<Issued> {
    const tokenType = request.requestedTokenType ?? TOKEN_TYPE_ACCESS_TOKEN;
    const provider = this.#o.providers.provider(tokenType, this.#o.realm);
    if (request.encrypt && audiences.length !== 1) throw new KeymeshError('ERR_INVALID_REQUEST', 'an encrypted token is for exactly one audience');
    const encryption = request.encrypt ? await this.#o.encryptionFor(audiences[0]!) : undefined;
    const response = await provider.createToken({
      stsProperties: this.#o.sts,
      ...(encryption ? { encryptionProperties: encryption } : {}),
      principal,
      requestedClaims: [],
      claimsManager: new ClaimsManager([
        { name: 'subject-token', claims: (p) => ({ ...p.principal.claims }) },
        ...(client.claims ? [{ name: 'client', claims: () => ({ ...client.claims }) }] : []),
      ]),
      keyRequirements: {
        ...request.keyRequirements,
        ...((renewal.jkt ?? request.confirmationJkt) ? { confirmationJkt: (renewal.jkt ?? request.confirmationJkt)! } : {}),
      },
      tokenRequirements: {
        tokenType,
        ...(scope && scope.length > 0 ? { scope } : {}),
        ...(notAfter !== undefined ? { notAfter } : {}),
        ...(renewal.lifetimeS !== undefined ? { lifetimeS: renewal.lifetimeS } : {}),
        ...(request.renewable ? { renewable: true } : {}),
      },
      appliesTo: audiences.length === 1 ? audiences[0]! : audiences,
      additionalProperties: {},
      tokenStore: this.#o.tokenStore,
      realm: this.#o.realm,
    });
    return { ...response, tokenType, bound: (renewal.jkt ?? request.confirmationJkt) !== undefined };
  }
}

function splitScope(scope: string | undefined): string[] | undefined {
  const scopes = scope?.split(' ').filter(Boolean);
  return scopes && scopes.length > 0 ? scopes : undefined;
}

/** The requested scopes, each one the subject token has (all of them when none are requested). */
function narrowScope(requested: readonly string[] | undefined, subject: Subject): readonly string[] | undefined {
  if (subject.scopes === undefined) return requested;
  if (requested === undefined) return subject.scopes;
  const wider = requested.filter((s) => !subject.scopes!.includes(s));
  if (wider.length > 0) throw new KeymeshError('ERR_INVALID_SCOPE', `scope ${wider.join(' ')} is not in the subject token`);
  return requested;
}
