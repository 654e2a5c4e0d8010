/**
 * WS-Trust's operations on a realm's token service: what `src/ws-trust/` parsed from a SOAP request becomes the
 * same call `/token`, `/introspect`, `/renew` and `/revoke` make, so every rule of those (grants, audiences,
 * lifetimes, chains, revocation, renewal once) holds for SOAP callers too.
 *
 * - `authenticate`: a `UsernameToken` is the client id and its client secret, checked (and throttled) exactly as
 *   `client_secret_basic` is. `authenticateSigned`: a request signed with a key of the client's registered key set
 *   (a `private_key_jwt` client), throttled alike, its signature recorded once cluster-wide against replay.
 * - `Issue` without `OnBehalfOf`/`ActAs` is `client_credentials`; with one of them it is a token exchange whose
 *   subject token is the token inside (a SAML assertion of this realm, or an access token); the new token's `act`
 *   names the caller either way. `AppliesTo` is the audience, `Lifetime` the requested lifetime, `Renewing` asks for
 *   a renewable token, `Entropy`/`KeySize`/`ComputedKeyAlgorithm` the SCT's key, and `KeyType` PublicKey with
 *   `UseKey` confirms a SAML assertion holder-of-key.
 * - `Validate` is introspection (a token that does not concern the caller is invalid to it), `Renew` renewal and
 *   `Cancel` revocation.
 */
import { KeymeshError } from '../errors.js';
import type { ClientConfig } from './clients.js';
import { signatureKeys } from './signature-keys.js';
import {
  TOKEN_TYPE_JWT,
  TOKEN_TYPE_SAML2,
  TOKEN_TYPE_SAML2_OAUTH,
  TOKEN_TYPE_SCT_2005,
  TOKEN_TYPE_SCT_200512,
} from './provider.js';
import type { Issued, TokenService } from './token-service.js';
import type {
  IssuedToken,
  IssueRequest as RstIssue,
  PresentedToken,
  WsTrustCaller,
  WsTrustOperations,
} from '../ws-trust/endpoint.js';

/** The WS-Security SAML token profile's name of a SAML 2.0 token type (Apache CXF's `STSClient` asks with it). */
const WSS_SAML2 = 'http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0';
const KEY_TYPE = 'http://docs.oasis-open.org/ws-sx/ws-trust/200512/';

/** The token type keymesh issues for a WS-Trust `TokenType`. @throws KeymeshError `ERR_UNSUPPORTED_TOKEN_TYPE` */
function issuedType(tokenType: string): string {
  if (tokenType === WSS_SAML2 || tokenType === TOKEN_TYPE_SAML2 || tokenType === TOKEN_TYPE_SAML2_OAUTH)
    return TOKEN_TYPE_SAML2;
  // WS-SecureConversation 1.3 names its token type with `/sct` after the namespace keymesh uses
  if (tokenType === `${TOKEN_TYPE_SCT_200512}/sct`) return TOKEN_TYPE_SCT_200512;
  if (tokenType === TOKEN_TYPE_SCT_2005 || tokenType === TOKEN_TYPE_SCT_200512 || tokenType === TOKEN_TYPE_JWT)
    return tokenType;
  throw new KeymeshError(
    'ERR_UNSUPPORTED_TOKEN_TYPE',
    `the TokenType is not issued here; ask for ${TOKEN_TYPE_SAML2}, ${TOKEN_TYPE_SCT_200512} or ${TOKEN_TYPE_JWT}`,
  );
}

/** The token text the token service reads. */
function tokenText(token: PresentedToken): string {
  return token.kind === 'saml2' ? token.xml : token.kind === 'jwt' ? token.jwt : token.identifier;
}

/**
 * The operations of one SOAP request on `tokens`; `source` is the caller's address (for the throttle of failed
 * client authentications).
 */
export function wsTrustOperations(tokens: TokenService, source: string, now: () => number): WsTrustOperations {
  const callers = new Map<string, ClientConfig>();
  const clientOf = (caller: WsTrustCaller): ClientConfig => {
    const client = callers.get(caller.clientId);
    if (!client) throw new KeymeshError('ERR_INVALID_CLIENT', 'the caller did not authenticate');
    return client;
  };
  return {
    async authenticate(username, password) {
      const basic = `Basic ${Buffer.from(`${encodeURIComponent(username)}:${encodeURIComponent(password)}`).toString('base64')}`;
      const client = await tokens.clients.authenticate(basic, {}, source);
      callers.set(client.clientId, client);
      return { clientId: client.clientId };
    },

    async authenticateSigned(clientId, verify, replayId, expiresAtS) {
      const client = await tokens.clients.authenticateByKey(
        clientId,
        (set) => {
          try {
            return verify([...signatureKeys(set).values()], undefined);
          } catch {
            return false;
          }
        },
        source,
      );
      // recorded for every client alike: the client id is not signed, and the same key may be registered twice
      if (!(await tokens.recordOnce('ws-trust-signed', replayId, expiresAtS)))
        throw new KeymeshError('ERR_INVALID_CLIENT', 'the signed request was sent before (replayed)');
      callers.set(client.clientId, client);
      return { clientId: client.clientId };
    },

    async issue(caller, rst) {
      const client = clientOf(caller);
      const tokenType = issuedType(rst.tokenType);
      const request = {
        requestedTokenType: tokenType,
        ...(rst.appliesTo !== undefined ? { audiences: [rst.appliesTo] } : {}),
        ...(rst.renewable ? { renewable: true } : {}),
        ...lifetimeOf(rst, now),
        keyRequirements: keyRequirementsOf(rst, tokenType),
      };
      if (rst.onBehalfOf && rst.actAs)
        throw new KeymeshError('ERR_INVALID_REQUEST', 'send OnBehalfOf or ActAs, not both');
      const subject = rst.onBehalfOf ?? rst.actAs;
      // a SAML assertion asked for by another of its names is answered under the name asked for
      const asked = (issued: Issued): IssuedToken => ({ ...issuedToken(issued), tokenType: rst.tokenType });
      if (!subject) return asked(await tokens.clientCredentials(client, request));
      if (subject.kind === 'sct')
        throw new KeymeshError('ERR_INVALID_REQUEST', 'a Security Context Token cannot be exchanged for another token');
      const issued = await tokens.exchange(client, {
        ...request,
        subjectToken: tokenText(subject),
        subjectTokenType: subject.kind === 'saml2' ? TOKEN_TYPE_SAML2 : TOKEN_TYPE_JWT,
      });
      return asked(issued);
    },

    async validate(caller, token) {
      const answer = await tokens.introspect(tokenText(token), undefined, clientOf(caller));
      return answer['active'] === true
        ? { valid: true }
        : { valid: false, reason: 'the token is not active, or does not concern the caller' };
    },

    async renew(caller, token) {
      if (token.kind === 'sct')
        throw new KeymeshError('ERR_INVALID_REQUEST', 'a Security Context Token is not renewed: issue a new one');
      return issuedToken(await tokens.renew(clientOf(caller), tokenText(token)));
    },

    async cancel(caller, token) {
      if (token.kind === 'sct')
        throw new KeymeshError(
          'ERR_INVALID_REQUEST',
          'a Security Context Token expires with its lifetime; it is not cancelled',
        );
      await tokens.revoke(clientOf(caller), tokenText(token));
    },
  };
}

function lifetimeOf(rst: RstIssue, now: () => number): { lifetimeS?: number } {
  const expires = rst.lifetime?.expires;
  if (expires === undefined) return {};
  const from = rst.lifetime?.created ?? Math.floor(now() / 1000);
  if (expires <= from) throw new KeymeshError('ERR_INVALID_REQUEST', 'the requested Lifetime ends before it starts');
  return { lifetimeS: expires - from };
}

function keyRequirementsOf(rst: RstIssue, tokenType: string) {
  const keyType = rst.keyType?.startsWith(KEY_TYPE) ? rst.keyType.slice(KEY_TYPE.length) : rst.keyType;
  if (rst.useKey && keyType !== 'PublicKey')
    throw new KeymeshError('ERR_INVALID_REQUEST', 'UseKey is sent with KeyType PublicKey; it is never ignored');
  if (keyType === 'PublicKey') {
    if (tokenType !== TOKEN_TYPE_SAML2)
      throw new KeymeshError('ERR_INVALID_REQUEST', 'KeyType PublicKey is issued only for SAML assertions');
    if (!rst.useKey)
      throw new KeymeshError('ERR_INVALID_REQUEST', 'KeyType PublicKey needs UseKey with the public key');
    return { confirmationKey: rst.useKey };
  }
  if (keyType !== undefined && keyType !== 'Bearer' && keyType !== 'SymmetricKey')
    throw new KeymeshError('ERR_INVALID_REQUEST', 'the KeyType is not one of Bearer, PublicKey or SymmetricKey');
  const sct = tokenType === TOKEN_TYPE_SCT_200512 || tokenType === TOKEN_TYPE_SCT_2005;
  // only an SCT has a symmetric key: asking another token for one is refused, never answered with a bearer token
  if (!sct && (keyType === 'SymmetricKey' || rst.entropy || rst.keySize !== undefined || rst.computedKeyAlgorithm))
    throw new KeymeshError(
      'ERR_INVALID_REQUEST',
      'only a Security Context Token has a symmetric key (SymmetricKey, Entropy, KeySize, ComputedKeyAlgorithm); a SAML assertion is bearer or holder-of-key with UseKey, a JWT bearer',
    );
  if (sct && keyType !== undefined && keyType !== 'SymmetricKey')
    throw new KeymeshError('ERR_INVALID_REQUEST', 'a Security Context Token is a symmetric key: KeyType SymmetricKey');
  return {
    ...(rst.keySize !== undefined ? { keySize: rst.keySize } : {}),
    ...(rst.entropy ? { clientEntropy: rst.entropy } : {}),
    ...(rst.computedKeyAlgorithm ? { computedKeyAlgorithm: rst.computedKeyAlgorithm } : {}),
  };
}

function issuedToken(issued: Issued): IssuedToken {
  const token: PresentedToken =
    issued.tokenType === TOKEN_TYPE_SAML2
      ? { kind: 'saml2', xml: issued.token }
      : issued.tokenType === TOKEN_TYPE_SCT_200512 || issued.tokenType === TOKEN_TYPE_SCT_2005
        ? { kind: 'sct', identifier: issued.token }
        : { kind: 'jwt', jwt: issued.token };
  return {
    tokenType: issued.tokenType,
    token,
    tokenId: issued.attachedReference.identifier,
    created: issued.expiresAt - issued.lifetime,
    expires: issued.expiresAt,
    ...(issued.keySize !== undefined ? { keySize: issued.keySize } : {}),
    ...(issued.entropy ? { entropy: issued.entropy } : {}),
    computedKey: issued.computedKey,
  };
}
