/**
 * Client assertions signed by this cluster (RFC 7523), for a backend beside a node that calls another cluster's
 * secret server: `iss` = `sub` = the realm's issuer (the client id the other cluster registers), `aud` = the
 * other secret server, a random `jti`, a lifetime of 60 s, signed with the realm's active signing key (the other
 * cluster verifies it against this cluster's published keys). Its header is explicitly typed
 * `typ: client-authentication+jwt` (RFC 8725 §3.11; the type of draft RFC 7523bis), so it cannot be mistaken
 * for any other JWT the cluster signs, nor another JWT for it.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../clock.js';
import type { Keyring } from '../keyring/keyring.js';

/** Lifetime of an assertion this cluster signs. */
export const OWN_ASSERTION_LIFETIME_S = 60;

/** The `typ` header of an assertion this cluster signs. */
export const OWN_ASSERTION_TYP = 'client-authentication+jwt';

/**
 * Signs a client assertion of `issuer` for `audience` with the realm's active signing key.
 * @throws KeymeshError `ERR_NO_ACTIVE_KEY` when the realm has no signing key that may be used now.
 */
export async function signClientAssertion(o: {
  keyring: Keyring;
  clock: Clock;
  realm: string;
  issuer: string;
  audience: string;
}): Promise<string> {
  const key = o.keyring.requireActive(o.realm, 'sig');
  const now = Math.floor(o.clock.now() / 1000);
  return new SignJWT({ jti: randomBytes(16).toString('base64url') })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: OWN_ASSERTION_TYP })
    .setIssuer(o.issuer)
    .setSubject(o.issuer)
    .setAudience(o.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + OWN_ASSERTION_LIFETIME_S)
    .sign(await key.privateKey());
}
