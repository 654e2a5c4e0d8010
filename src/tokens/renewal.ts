/**
 * Renewal (`/renew`, WS-Trust `Renew`): what a renewal of a token issues, decided before anything is issued.
 *
 * A token is renewed for the client it was issued to, only when the client may renew, the token was issued as
 * renewable, and neither it nor any token of its chain expired or was revoked. The new token is like the old one
 * (subject, audiences, scope, actor, claims, lifetime, token type), never outlives the chain, and keeps its DPoP
 * binding (renewing a bound token takes a proof of its key). A holder-of-key assertion is not renewed: its key was
 * proven to nobody here, so the client asks for a new one.
 *
 * Renewal replaces: one successor per token is chosen cluster-wide (`renewed/<jti>`), the old token is revoked,
 * and a second renewal of it is a stolen or cloned token (RFC 9700 §4.14.2), so it is refused and every token that
 * replaced it is revoked too, so neither copy lives on.
 */
import { randomUUID } from 'node:crypto';
import type { JWTPayload } from 'jose';
import { isKeymeshError, KeymeshError } from '../errors.js';
import { chainOf } from './chain.js';
import type { ClientConfig } from './clients.js';
import { grantScope, parseScope, pickAudiences } from './grants.js';
import { type Principal, type StsProperties, TOKEN_TYPE_SAML2, type TokenChain } from './provider.js';
import { looksLikeXml, samlSigningKey } from './saml-provider.js';

/** Most renewals followed when a reused token's lineage is revoked. Default is 64. */
export const MAX_LINEAGE_STEPS = 64;

/** What a renewal needs of the token service. */
export interface RenewalContext {
  readonly sts: StsProperties;
  readonly isRevoked: (jti: string) => Promise<boolean>;
  readonly recordRevocation: (jti: string, expiresAt: number) => Promise<void>;
  readonly claimOnce: (key: string, value: string, expiresAtS: number) => Promise<string>;
  /** The payload of a token this realm issued. @throws KeymeshError `ERR_INVALID_TOKEN`, `ERR_INVALID_XML` */
  readonly readOwn: (token: string) => Promise<JWTPayload>;
}

/** The token a renewal issues; the old one is revoked and its successor claimed by the time this is known. */
export interface RenewalPlan {
  readonly principal: Principal;
  readonly audiences: readonly string[];
  readonly scopes: readonly string[] | undefined;
  readonly chain: TokenChain | undefined;
  readonly jkt: string | undefined;
  readonly lifetimeS: number;
  /** The id the new token must have. */
  readonly successor: string;
  /** The id of the token it replaces. */
  readonly replaces: string;
  /** The token type to issue when it is not an access token (a SAML assertion is renewed as one). */
  readonly tokenType: string | undefined;
}

/**
 * Checks that `client` may renew `token` and claims the renewal.
 * @throws KeymeshError `ERR_INVALID_GRANT`, `ERR_UNAUTHORIZED_CLIENT`, `ERR_INVALID_SCOPE`, `ERR_UNKNOWN_AUDIENCE`.
 */
export async function planRenewal(
  context: RenewalContext,
  client: ClientConfig,
  token: string,
  confirmationJkt: string | undefined,
): Promise<RenewalPlan> {
  if (client.renewable !== true)
    throw new KeymeshError('ERR_UNAUTHORIZED_CLIENT', 'the client is not registered to renew tokens');
  let payload: JWTPayload;
  try {
    payload = await context.readOwn(token);
  } catch (err) {
    // a store that cannot answer is unavailable, not a bad grant: the client must not throw a good token away
    if (isKeymeshError(err) && err.code !== 'ERR_INVALID_TOKEN' && err.code !== 'ERR_INVALID_XML') throw err;
    throw new KeymeshError('ERR_INVALID_GRANT', (err as Error).message, { cause: err });
  }
  if (payload['client_id'] !== client.clientId)
    throw new KeymeshError('ERR_UNAUTHORIZED_CLIENT', 'a client may renew only tokens issued to it');
  if (payload['renewable'] !== true)
    throw new KeymeshError('ERR_INVALID_GRANT', 'the token was not issued as renewable');
  const chain = chainOf(payload);
  const ancestors = await Promise.all((chain?.jti ?? []).map((id) => context.isRevoked(id)));
  if (ancestors.some(Boolean))
    throw new KeymeshError('ERR_INVALID_GRANT', 'a token this one was made from was revoked');
  const cnf = payload['cnf'] as { jkt?: string } | undefined;
  const jkt = cnf?.jkt;
  if (cnf !== undefined && jkt === undefined)
    throw new KeymeshError('ERR_INVALID_GRANT', 'a holder-of-key assertion is renewed by asking for a new one');
  if (jkt !== undefined && confirmationJkt !== jkt)
    throw new KeymeshError(
      'ERR_INVALID_GRANT',
      'the token is bound to a DPoP key (cnf.jkt): renew it with a DPoP proof of that key',
    );
  const {
    iss: _i,
    sub,
    aud,
    exp,
    iat,
    jti,
    client_id: _c,
    act,
    cnf: _k,
    scope,
    renewable: _r,
    chain: _h,
    nbf: _n,
    ...claims
  } = payload as Record<string, unknown>;
  const audiences = Array.isArray(aud) ? (aud as string[]) : [aud as string];
  pickAudiences(client.audiences, audiences, 'the client is registered for');
  const scopes = grantScope(typeof scope === 'string' ? parseScope(scope) : undefined, client.scopes ?? [], undefined);
  const tokenType = looksLikeXml(token) ? TOKEN_TYPE_SAML2 : undefined;
  // a renewal the realm cannot issue now (a SAML assertion once the realm signs with EdDSA) is refused before the
  // old token is retired
  if (tokenType) samlSigningKey(await context.sts.signingKey());
  const successor = randomUUID();
  const chosen = await context.claimOnce(`renewed/${jti as string}`, successor, exp as number);
  if (chosen !== successor) {
    await revokeLineage(context, chosen);
    throw new KeymeshError(
      'ERR_INVALID_GRANT',
      'the token was renewed already; the tokens that replaced it are revoked too',
    );
  }
  if (await context.isRevoked(jti as string)) throw new KeymeshError('ERR_INVALID_GRANT', 'the token was revoked');
  await context.recordRevocation(jti as string, exp as number);
  return {
    principal: {
      subject: sub as string,
      clientId: client.clientId,
      ...(act ? { actor: act as Principal['actor'] } : {}),
      claims,
    },
    audiences,
    scopes,
    chain,
    jkt,
    lifetimeS: (exp as number) - (iat as number),
    successor,
    replaces: jti as string,
    tokenType,
  };
}

/**
 * Revokes `first` and every token that replaced it by renewal, in order (reuse detection must not be beaten by
 * renewing the stolen copy once more). Each step claims the token's renewal record, so a token found without a
 * successor can get none from now on. At most `MAX_LINEAGE_STEPS` tokens are followed.
 */
async function revokeLineage(context: RenewalContext, first: string): Promise<void> {
  const until = Math.floor(context.sts.now() / 1000) + context.sts.maxLifetimeS;
  let current = first;
  for (let step = 0; step < MAX_LINEAGE_STEPS; step++) {
    await context.recordRevocation(current, until);
    const end = `end-of-lineage:${randomUUID()}`;
    const next = await context.claimOnce(`renewed/${current}`, end, until);
    if (next === end || next.startsWith('end-of-lineage:')) return;
    current = next;
  }
}
