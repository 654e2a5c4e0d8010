/**
 * Fixed wording for why a JWT was refused. Callers see these sentences, never a library's message (which may
 * quote the token's own header or claims back); the library's error stays in `cause` for the log.
 */
import { errors } from 'jose';

/** One sentence for a `jose` verification failure, `what` naming the token ("the token", "the user assertion"). */
export function whyRefused(err: unknown, what = 'the token'): string {
  if (err instanceof errors.JWTExpired) return `${what} has expired`;
  if (err instanceof errors.JWTClaimValidationFailed)
    return `${what} has an unacceptable ${CHECKED_CLAIMS.has(err.claim) ? err.claim : 'claim'}`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return `${what}'s signature does not verify`;
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys)
    return `no published key matches ${what}`;
  if (err instanceof errors.JOSEAlgNotAllowed) return `${what} uses an algorithm that is not accepted`;
  if (err instanceof errors.JWTInvalid || err instanceof errors.JWSInvalid) return `${what} is not a well-formed JWT`;
  return `${what} does not verify`;
}

/** Claim names jose reports that may be named back (header `typ` included). */
const CHECKED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'typ', 'client_id', 'scope']);
