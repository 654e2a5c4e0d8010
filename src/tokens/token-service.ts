/**
 * The token service's operations (DESIGN §9, API.md): issue (`client_credentials` here), validate (RFC 7662
 * introspection) and cancel (RFC 7009 revocation), for authenticated clients of the default realm.
 *
 * Issue hands a `TokenProviderParameters` to the provider registered for the requested token type; the audience
 * must be one the client is registered for (its first by default). A revocation is a write-once record
 * `revoked/<jti>` on the register, so every node, including one that was down, refuses the token from then on.
 */
import { KeymeshError } from '../errors.js';
import type { ClientConfig, ClientRegistry } from './clients.js';
import type { JwtAccessTokenProvider } from './jwt-provider.js';
import {
  ClaimsManager, TOKEN_TYPE_ACCESS_TOKEN, type StsProperties, type TokenProviders, type TokenProviderResponse, type TokenStore,
} from './provider.js';

export const GRANT_CLIENT_CREDENTIALS = 'client_credentials';

export interface TokenServiceOptions {
  readonly realm: string;
  readonly clients: ClientRegistry;
  readonly providers: TokenProviders;
  readonly jwt: JwtAccessTokenProvider;
  readonly sts: StsProperties;
  readonly tokenStore: TokenStore;
  /** Write-once revocation record of `jti`, kept until `expiresAt` (seconds). */
  readonly recordRevocation: (jti: string, expiresAt: number) => Promise<void>;
}

export interface IssueRequest {
  readonly audience?: string | undefined;
  readonly scope?: string | undefined;
  readonly requestedTokenType?: string | undefined;
}

export class TokenService {
  readonly #o: TokenServiceOptions;

  constructor(options: TokenServiceOptions) {
    this.#o = options;
  }

  get clients(): ClientRegistry {
    return this.#o.clients;
  }

  /**
   * `client_credentials`: a token about the client itself.
   * @throws KeymeshError `ERR_UNAUTHORIZED_CLIENT`, `ERR_UNKNOWN_AUDIENCE`, `ERR_UNSUPPORTED_TOKEN_TYPE`.
   */
  async clientCredentials(client: ClientConfig, request: IssueRequest): Promise<TokenProviderResponse & { tokenType: string }> {
    if (!client.grants.includes(GRANT_CLIENT_CREDENTIALS)) throw new KeymeshError('ERR_UNAUTHORIZED_CLIENT', `client ${client.clientId} may not use the client_credentials grant`);
    const audience = request.audience ?? client.audiences[0]!;
    if (!client.audiences.includes(audience)) throw new KeymeshError('ERR_UNKNOWN_AUDIENCE', `client ${client.clientId} is not registered for audience ${audience}`);
    const tokenType = request.requestedTokenType ?? TOKEN_TYPE_ACCESS_TOKEN;
    const provider = this.#o.providers.provider(tokenType, this.#o.realm);
    const scope = request.scope?.split(' ').filter(Boolean);
    const response = await provider.createToken({
      stsProperties: this.#o.sts,
      principal: { subject: client.clientId, clientId: client.clientId },
      requestedClaims: [],
      claimsManager: new ClaimsManager(client.claims ? [{ name: 'client', claims: () => ({ ...client.claims }) }] : []),
      keyRequirements: {},
      tokenRequirements: { tokenType, ...(scope && scope.length > 0 ? { scope } : {}) },
      appliesTo: audience,
      additionalProperties: {},
      tokenStore: this.#o.tokenStore,
      realm: this.#o.realm,
    });
    return { ...response, tokenType };
  }

  /** RFC 7662: `{active: false}` for anything this realm did not issue or that is expired or revoked. */
  async introspect(token: string): Promise<Record<string, unknown>> {
    const result = await this.#o.jwt.validateToken(token, TOKEN_TYPE_ACCESS_TOKEN, this.#o.realm);
    return result.active ? { active: true, ...result.claims } : { active: false };
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
}
