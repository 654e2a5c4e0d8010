/**
 * A SAML 2.0 assertion of a user by a server registered with `delegation` (seed 003's server-initiated scenario,
 * where PicketLink servers pass a SAML assertion on): the SAML form of the user assertion `subject-tokens.ts`
 * accepts as a JWT, under the same rules.
 *
 * The assertion must be signed (RSA-SHA256 or ECDSA-SHA256) by a key of the server's own `jwksUri`, its `Issuer`
 * the server's client id, its subject a user (not the server), its audience this realm (the issuer or its token
 * endpoint), live for at most `CLIENT_ASSERTION_MAX_LIFETIME_MS`, and its `ID` recorded once cluster-wide (a
 * replayed assertion is refused on every node). Every value is read from what the signature covers
 * (`src/saml/verify.ts`).
 */
import { CLIENT_ASSERTION_MAX_LIFETIME_MS } from '../config/defaults.js';
import { KeymeshError } from '../errors.js';
import type { RemoteJWKSet } from '../net/remote-key-set.js';
import { samlLibrary } from '../saml/lazy.js';
import type { VerifiedAssertion } from '../saml/verify.js';
import { recordJti, type RecordOnce } from '../secret-server/client-assertions.js';
import type { ClientConfig } from './clients.js';
import { ClaimsManager } from './provider.js';
import { signatureKeys } from './signature-keys.js';
import { SAML_MAX_BYTES } from './saml-provider.js';
import type { Subject } from './subject-tokens.js';

export interface DelegatedAssertionContext {
  readonly issuer: string;
  readonly now: number;
  readonly clockSkewMs: number;
  readonly recordOnce: RecordOnce;
}

/**
 * Checks `token`, a SAML assertion by `caller` about a user, against `keys` (the caller's key set).
 * @throws KeymeshError `ERR_INVALID_GRANT` (with the reason), `ERR_IDP_UNAVAILABLE` when the key set cannot be read.
 */
export async function delegatedAssertion(
  caller: ClientConfig,
  keys: RemoteJWKSet,
  token: string,
  context: DelegatedAssertionContext,
): Promise<Subject> {
  let set = keys.jwks();
  if (set === undefined || !keys.fresh) {
    await keys.reload();
    set = keys.jwks();
  }
  const trusted = signatureKeys(set);
  const { verifyAssertion } = await samlLibrary();
  let verified: VerifiedAssertion;
  try {
    verified = verifyAssertion(token, {
      keys: (kid) => (kid !== undefined && trusted.has(kid) ? [trusted.get(kid)!] : [...trusted.values()]),
      issuer: caller.clientId,
      audiences: [context.issuer, `${context.issuer}/token`],
      now: context.now,
      clockSkewS: Math.floor(context.clockSkewMs / 1000),
      maxBytes: SAML_MAX_BYTES,
    });
  } catch (err) {
    throw new KeymeshError('ERR_INVALID_GRANT', `the user assertion is refused: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const nowS = Math.floor(context.now / 1000);
  const lived = verified.notOnOrAfter - Math.min(verified.notBefore ?? verified.issueInstant, nowS);
  if (lived * 1000 > CLIENT_ASSERTION_MAX_LIFETIME_MS + context.clockSkewMs)
    throw new KeymeshError(
      'ERR_INVALID_GRANT',
      `the user assertion lives longer than ${CLIENT_ASSERTION_MAX_LIFETIME_MS / 1000} s`,
    );
  if (verified.subject.nameId === caller.clientId)
    throw new KeymeshError('ERR_INVALID_GRANT', 'a user assertion must name a user, not the client itself');
  if (!(await recordJti(context.recordOnce, caller.clientId, `saml:${verified.id}`, verified.notOnOrAfter)))
    throw new KeymeshError('ERR_INVALID_GRANT', 'the user assertion was used before (replayed ID)');
  const claims = Object.fromEntries(
    Object.entries(verified.attributes)
      .filter(([name]) => !ClaimsManager.RESERVED.has(name))
      .map(([name, values]) => [name, values.length === 1 ? values[0] : [...values]]),
  );
  return {
    subject: verified.subject.nameId,
    actor: { sub: caller.clientId },
    audiences: caller.audiences,
    scopes: caller.scopes ?? [],
    notAfter: verified.notOnOrAfter,
    chain: { jti: [], exp: verified.notOnOrAfter },
    jkt: undefined,
    claims,
  };
}
