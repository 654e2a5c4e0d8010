/**
 * The token service's operations (DESIGN §9, API.md) for authenticated clients of one realm: issue
 * (`client_credentials` and RFC 8693 token exchange with on-behalf-of), validate (RFC 7662 introspection), renew
 * (`/renew`, for tokens issued as renewable) and cancel (RFC 7009 revocation).
 *
 * Deny by default: a client gets exactly the grants, audiences (and RFC 8707 resources), scopes and renewability
 * its registration lists, each list granting nothing when empty; the registry of a realm holds only that realm's
 * clients. A token made from another (exchange, renewal) never widens audience or scope, never outlives any token
 * of its chain, dies with the revocation of any of them, and keeps the DPoP binding of the token it came from
 * (exchanging or renewing a bound token takes a proof of its key). A renewal retires the token it replaces, once:
 * a second renewal of the same token is refused on every node. A revocation is a write-once record
 * `revoked/<jti>` on the register, so every node, including one that was down, refuses the token from then on.
 * Introspection (RFC 7662 §4) answers only the party a token concerns: the client it was issued to, or a client
 * that is one of its audiences (by client id or as a registered resource server); anyone else learns
 * `{active: false}`.
 */
import type { JWTPayload } from 'jose';
import { tokenRef, userRef } from '../audit/events.js';
import { recordJti } from '../secret-server/client-assertions.js';
import { KeymeshError } from '../errors.js';
import { concerns, grantScope, parseScope, pickAudiences } from './grants.js';
import { planRenewal } from './renewal.js';
import type { ClientConfig, ClientRegistry } from './clients.js';
import {
  ClaimsManager,
  TOKEN_TYPE_ACCESS_TOKEN,
  TOKEN_TYPE_SAML2,
  TOKEN_TYPE_SCT_200512,
  type ClaimsHandler,
  type KeyRequirements,
  type Principal,
  type RequestedClaim,
  type TokenChain,
  type TokenProviderParameters,
  type TokenRequirements,
} from './provider.js';
import { looksLikeXml, SAML_TOKEN_TYPES } from './saml-provider.js';
import type { ExchangeRequest, IssueRequest, Issued, TokenServiceOptions } from './token-service-options.js';

export { parseScope } from './grants.js';
export type { ExchangeRequest, IssueRequest, Issued, TokenServiceOptions } from './token-service-options.js';
export { MAX_LINEAGE_STEPS } from './renewal.js';

export const GRANT_CLIENT_CREDENTIALS = 'client_credentials';
export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

const SCT_TYPES = new Set(['http://schemas.xmlsoap.org/ws/2005/02/sc/sct', TOKEN_TYPE_SCT_200512]);

export class TokenService {
  readonly #o: TokenServiceOptions;
  /** Per registration object, so that it goes with the registration (a WeakMap holds no client alive). */
  readonly #claimsManagers = new WeakMap<ClientConfig, ClaimsManager>();

  constructor(options: TokenServiceOptions) {
    this.#o = options;
  }

  get clients(): ClientRegistry {
    return this.#o.clients;
  }

  /**
   * Records what `clientId` presented under `id` once, until `expiresAtS` (a signed request's signature, against
   * replay); false when it was recorded before. Without a `recordOnce` every id is new.
   */
  recordOnce(clientId: string, id: string, expiresAtS: number): Promise<boolean> {
    return this.#o.recordOnce ? recordJti(this.#o.recordOnce, clientId, id, expiresAtS) : Promise.resolve(true);
  }

  get dpop(): TokenServiceOptions['dpop'] {
    return this.#o.dpop;
  }

  /**
   * `client_credentials`: a token about the client itself.
   * @throws KeymeshError `ERR_UNAUTHORIZED_CLIENT`, `ERR_UNKNOWN_AUDIENCE`, `ERR_INVALID_SCOPE`, `ERR_UNSUPPORTED_TOKEN_TYPE`.
   */
  async clientCredentials(client: ClientConfig, request: IssueRequest): Promise<Issued> {
    this.#mayUse(client, GRANT_CLIENT_CREDENTIALS);
    this.#mayAskRenewable(client, request);
    const audiences = pickAudiences(client.audiences, request.audiences, 'the client is registered for');
    const scope = grantScope(parseScope(request.scope), client.scopes ?? [], undefined);
    const issued = await this.#issue(
      client,
      { subject: client.clientId, clientId: client.clientId },
      audiences,
      scope,
      undefined,
      request,
    );
    void this.#o.audit?.record({
      event: 'token:issued',
      realm: this.#o.realm,
      client: client.clientId,
      grant: GRANT_CLIENT_CREDENTIALS,
      tokenType: issued.tokenType,
      audiences,
      token: tokenRef(issued.tokenId),
      expiresAt: issued.expiresAt,
    });
    return issued;
  }

  /**
   * RFC 8693 token exchange, on behalf of the subject token's user: audiences and scopes within both the subject
   * token's and the client's, no later expiry than any token of the chain, the subject token's DPoP binding kept.
   * @throws KeymeshError `ERR_INVALID_GRANT`, `ERR_UNAUTHORIZED_CLIENT`, `ERR_UNKNOWN_AUDIENCE`, `ERR_INVALID_SCOPE`,
   *   `ERR_UNSUPPORTED_TOKEN_TYPE`.
   */
  async exchange(client: ClientConfig, request: ExchangeRequest): Promise<Issued> {
    this.#mayUse(client, GRANT_TOKEN_EXCHANGE);
    this.#mayAskRenewable(client, request);
    const requestedScope = parseScope(request.scope);
    const subject = await this.#o.subjects.check(client, request.subjectToken, request.subjectTokenType);
    if (subject.jkt !== undefined && request.confirmationJkt !== subject.jkt) {
      throw new KeymeshError(
        'ERR_INVALID_GRANT',
        'the subject token is bound to a DPoP key (cnf.jkt): exchange it with a DPoP proof of that key',
      );
    }
    const allowed = subject.audiences.filter((a) => client.audiences.includes(a));
    const audiences = pickAudiences(allowed, request.audiences, 'both the subject token and the client allow');
    const scope = grantScope(requestedScope, client.scopes ?? [], subject.scopes);
    const principal: Principal = {
      subject: subject.subject,
      clientId: client.clientId,
      ...(subject.actor ? { actor: subject.actor } : {}),
      claims: subject.claims,
    };
    const issued = await this.#issue(client, principal, audiences, scope, subject.notAfter, request, {
      ...(subject.chain ? { chain: subject.chain } : {}),
      ...(subject.jkt ? { jkt: subject.jkt } : {}),
    });
    void this.#o.audit?.record({
      event: 'token:exchanged',
      realm: this.#o.realm,
      client: client.clientId,
      tokenType: issued.tokenType,
      audiences,
      user: userRef(this.#o.sts.issuer, subject.subject),
      token: tokenRef(issued.tokenId),
      expiresAt: issued.expiresAt,
    });
    return issued;
  }

  /**
   * `/renew`: a new token like `token` with a new expiry, for the client it was issued to, only when the client may
   * renew, the token was issued as renewable, and neither it nor any token of its chain expired or was revoked. The
   * new token never outlives the chain, keeps its DPoP binding (renewing a bound token takes a proof of its key,
   * `confirmationJkt`), and replaces the old one: the old token is revoked, and a second renewal of it is refused
   * and revokes the token the first one issued (reuse detection, RFC 9700 §4.14.2).
   * @throws KeymeshError `ERR_INVALID_GRANT`, `ERR_UNAUTHORIZED_CLIENT`, `ERR_INVALID_SCOPE`, `ERR_UNKNOWN_AUDIENCE`.
   */
  async renew(client: ClientConfig, token: string, confirmationJkt?: string): Promise<Issued> {
    const plan = await planRenewal({ ...this.#o, readOwn: (t) => this.#readOwn(t) }, client, token, confirmationJkt);
    const issued = await this.#issue(
      client,
      plan.principal,
      plan.audiences,
      plan.scopes,
      plan.chain?.exp,
      { renewable: true, ...(plan.tokenType ? { requestedTokenType: plan.tokenType } : {}) },
      {
        lifetimeS: plan.lifetimeS,
        tokenId: plan.successor,
        ...(plan.chain ? { chain: plan.chain } : {}),
        ...(plan.jkt ? { jkt: plan.jkt } : {}),
      },
    );
    void this.#o.audit?.record({
      event: 'token:renewed',
      realm: this.#o.realm,
      client: client.clientId,
      token: tokenRef(issued.tokenId),
      replaces: tokenRef(plan.replaces),
      expiresAt: issued.expiresAt,
    });
    return issued;
  }

  /**
   * RFC 7662: `{active: false}` for anything this realm did not issue, that is expired or revoked (itself or a token
   * of its chain), or that does not concern the caller (§4: only the client it was issued to and its audiences
   * learn about it). An SCT (its `urn:uuid:` identifier) is validated by its provider: the resource server it was
   * issued for also gets its key, as `key_jwe` encrypted to that server's POP key. `token_type_hint` decides only
   * which kind is tried first.
   */
  async introspect(token: string, hint: string | undefined, client: ClientConfig): Promise<Record<string, unknown>> {
    const answer = await this.#introspect(token, hint, client);
    // an SCT is named by its identifier (the token itself); an access token by its jti
    const id =
      answer['active'] !== true
        ? undefined
        : typeof answer['jti'] === 'string'
          ? answer['jti']
          : token.startsWith('urn:uuid:')
            ? token
            : undefined;
    void this.#o.audit?.record({
      event: 'token:introspected',
      realm: this.#o.realm,
      client: client.clientId,
      active: answer['active'] === true,
      ...(id ? { token: tokenRef(id) } : {}),
    });
    return answer;
  }

  async #introspect(token: string, hint: string | undefined, client: ClientConfig): Promise<Record<string, unknown>> {
    const sctFirst = token.startsWith('urn:uuid:') || (hint !== undefined && SCT_TYPES.has(hint));
    const caller = this.#o.caller(client);
    const types = looksLikeXml(token)
      ? [TOKEN_TYPE_SAML2]
      : sctFirst
        ? [TOKEN_TYPE_SCT_200512, TOKEN_TYPE_ACCESS_TOKEN]
        : [TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_SCT_200512];
    for (const type of types) {
      const validator = this.#o.providers.findValidator(type, this.#o.realm);
      const result = validator ? await validator.validateToken(token, type, this.#o.realm, caller) : { active: false };
      if (!result.active) continue;
      if (!concerns(result.claims ?? {}, client.clientId, caller.audiences)) return { active: false };
      const answer: Record<string, unknown> = Object.assign({}, result.claims, { active: true });
      if (result.keyJwe) answer['key_jwe'] = result.keyJwe;
      return answer;
    }
    return { active: false };
  }

  /**
   * RFC 7009: revokes a token this realm issued. Answers the same for unknown or invalid tokens (the spec's
   * "invalid tokens do not cause an error"), but a client may revoke only its own tokens.
   */
  async revoke(client: ClientConfig, token: string): Promise<void> {
    let payload;
    try {
      payload = await this.#readOwn(token);
    } catch (err) {
      // a store that cannot answer is an error: the caller must not believe the token revoked
      if (err instanceof KeymeshError && err.code !== 'ERR_INVALID_TOKEN' && err.code !== 'ERR_INVALID_XML') throw err;
      return;
    }
    if (payload['client_id'] !== client.clientId)
      throw new KeymeshError('ERR_UNAUTHORIZED_CLIENT', 'a client may revoke only tokens issued to it');
    await this.#o.recordRevocation(payload.jti!, payload.exp!);
    void this.#o.audit?.record({
      event: 'token:revoked',
      realm: this.#o.realm,
      client: client.clientId,
      token: tokenRef(payload.jti!),
    });
  }

  /**
   * The payload of a token this realm issued: an access token verified, or a SAML assertion verified and read with
   * its record. @throws KeymeshError `ERR_INVALID_TOKEN`, `ERR_INVALID_XML`
   */
  #readOwn(token: string): Promise<JWTPayload> {
    if (looksLikeXml(token)) {
      if (!this.#o.saml) throw new KeymeshError('ERR_INVALID_TOKEN', 'this realm issues no SAML assertions');
      return this.#o.saml.read(token, this.#o.realm);
    }
    return this.#o.jwt.verify(token, this.#o.realm);
  }

  #mayUse(client: ClientConfig, grant: string): void {
    if (!client.grants.includes(grant))
      throw new KeymeshError('ERR_UNAUTHORIZED_CLIENT', 'the client is not registered for this grant type');
  }

  #mayAskRenewable(client: ClientConfig, request: IssueRequest): void {
    if (request.renewable && client.renewable !== true)
      throw new KeymeshError('ERR_UNAUTHORIZED_CLIENT', 'the client is not registered for renewable tokens');
  }

  async #issue(
    client: ClientConfig,
    principal: Principal,
    audiences: readonly string[],
    scope: readonly string[] | undefined,
    notAfter: number | undefined,
    request: IssueRequest,
    renewal: { lifetimeS?: number; jkt?: string; chain?: TokenChain; tokenId?: string } = {},
  ): Promise<Issued> {
    if (client.requireDpop && (renewal.jkt ?? request.confirmationJkt) === undefined) {
      throw new KeymeshError(
        'ERR_INVALID_DPOP_PROOF',
        'this client is registered to get only DPoP-bound tokens: send a DPoP proof',
      );
    }
    const tokenType = request.requestedTokenType ?? TOKEN_TYPE_ACCESS_TOKEN;
    // an SCT record holds no binding, chain or actor: a token that needs one is never turned into an SCT
    if (
      SCT_TYPES.has(tokenType) &&
      ((renewal.jkt ?? request.confirmationJkt) !== undefined ||
        renewal.chain !== undefined ||
        principal.actor !== undefined)
    ) {
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        'a Security Context Token carries no DPoP binding, token chain or actor: ask for an access token',
      );
    }
    if (request.keyRequirements?.confirmationKey && !SAML_TOKEN_TYPES.has(tokenType))
      throw new KeymeshError(
        'ERR_INVALID_REQUEST',
        'only a SAML assertion is confirmed holder-of-key with a public key; bind an access token with DPoP',
      );
    const provider = this.#o.providers.provider(tokenType, this.#o.realm);
    if (request.encrypt && audiences.length !== 1)
      throw new KeymeshError('ERR_INVALID_REQUEST', 'an encrypted token is for exactly one audience');
    const encryption = request.encrypt ? await this.#o.encryptionFor(audiences[0]!) : undefined;
    const jkt = renewal.jkt ?? request.confirmationJkt;
    // built field by field: this runs for every token, and conditional object spreads cost more than the fields
    const keyRequirements: KeyRequirements = jkt
      ? { ...request.keyRequirements, confirmationJkt: jkt }
      : (request.keyRequirements ?? NO_KEY_REQUIREMENTS);
    const tokenRequirements: { -readonly [K in keyof TokenRequirements]: TokenRequirements[K] } = { tokenType };
    if (scope && scope.length > 0) tokenRequirements.scope = scope;
    if (notAfter !== undefined) tokenRequirements.notAfter = notAfter;
    if (renewal.chain) tokenRequirements.chain = renewal.chain;
    if (renewal.tokenId) tokenRequirements.tokenId = renewal.tokenId;
    const lifetimeS = renewal.lifetimeS ?? request.lifetimeS;
    if (lifetimeS !== undefined) tokenRequirements.lifetimeS = lifetimeS;
    if (request.renewable) tokenRequirements.renewable = true;
    const params: TokenProviderParameters = {
      stsProperties: this.#o.sts,
      principal,
      requestedClaims: NO_CLAIMS,
      claimsManager: this.#claimsManager(client),
      keyRequirements,
      tokenRequirements,
      appliesTo: audiences.length === 1 ? audiences[0]! : audiences,
      additionalProperties: {},
      tokenStore: this.#o.tokenStore,
      realm: this.#o.realm,
    };
    const response = await provider.createToken(encryption ? { ...params, encryptionProperties: encryption } : params);
    // not `{ ...response, tokenType, bound }`: V8 copies a spread that adds fields through a slow path, about 5 µs a
    // token, more than the rest of this method together
    const issued: Issued = Object.assign({}, response, { tokenType, bound: jkt !== undefined });
    if (scope && scope.length > 0) issued.scope = scope.join(' ');
    return issued;
  }

  /**
   * The claims manager of `client`'s tokens: the subject token's claims, then the client's registered ones. Made
   * once per registration object; a changed registration is a new object (and a new service), so it is never stale.
   */
  #claimsManager(client: ClientConfig): ClaimsManager {
    let manager = this.#claimsManagers.get(client);
    if (!manager) {
      const registered = client.claims;
      manager = new ClaimsManager(
        registered ? [SUBJECT_CLAIMS, { name: 'client', claims: () => ({ ...registered }) }] : [SUBJECT_CLAIMS],
      );
      this.#claimsManagers.set(client, manager);
    }
    return manager;
  }
}

/** The claims a subject token carries over (none for `client_credentials`). */
const SUBJECT_CLAIMS: ClaimsHandler = { name: 'subject-token', claims: (p) => ({ ...p.principal.claims }) };
const NO_CLAIMS: readonly RequestedClaim[] = [];
const NO_KEY_REQUIREMENTS: KeyRequirements = Object.freeze({});
