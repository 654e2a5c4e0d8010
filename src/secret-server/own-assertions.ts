/**
 * Client assertions signed by this cluster (RFC 7523), for a backend beside a node that calls another cluster's
 * secret server: `iss` = `sub` = the realm's issuer (the client id the other cluster registers), `aud` = the
 * other secret server, a random `jti`, a lifetime of 60 s, signed with the realm's active signing key (the other
 * cluster verifies it against this cluster's published keys).
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Clock } from '../clock.js';
import type { Keyring } from '../keyring/keyring.js';

/** Lifetime of an assertion this cluster signs. */
export const OWN_ASSERTION_LIFETIME_S = 60;

export async function signClientAssertion(o: { keyring: Keyring; clock: Clock; realm: string; issuer: string; audience: string }): Promise<string> {
  const key = o.keyring.requireActive(o.realm, 'sig');
  const now = Math.floor(o.clock.now() / 1000);
  return new SignJWT({ jti: randomBytes(16).toString('base64url') })
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
    .setIssuer(o.issuer)
    .setSubject(o.issuer)
    .setAudience(o.audience)
    .setIssuedAt(now)
    .setExpirationTime(now + OWN_ASSERTION_LIFETIME_S)
    .sign(await key.privateKey());
}
