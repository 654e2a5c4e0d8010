/**
 * The public keys of a JWK Set that can check an XML signature keymesh accepts (RSA-SHA256, ECDSA-SHA256 on
 * P-256), as Node `KeyObject`s by kid: the realm's own keys for its SAML assertions, a delegation server's key set
 * for its assertions of users, a client's key set for its signed WS-Trust requests. Keys of other types, keys not
 * for signing and keys Node cannot read are left out: they verify nothing.
 */
import { createPublicKey, type JsonWebKey as NodeJwk, type KeyObject } from 'node:crypto';
import type { JSONWebKeySet } from 'jose';

/** The RSA and P-256 signing keys of `set` by kid (a key without a kid under `#<position>`). */
export function signatureKeys(set: JSONWebKeySet | undefined): Map<string, KeyObject> {
  const out = new Map<string, KeyObject>();
  for (const [i, jwk] of (set?.keys ?? []).entries()) {
    if (jwk.kty !== 'RSA' && !(jwk.kty === 'EC' && jwk.crv === 'P-256')) continue;
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    try {
      out.set(jwk.kid ?? `#${i}`, createPublicKey({ key: jwk as NodeJwk, format: 'jwk' }));
    } catch {
      // a key Node cannot read verifies nothing
    }
  }
  return out;
}
