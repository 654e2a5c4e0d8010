/**
 * The rules of what a token may grant (DESIGN §9): scopes within the client's registration and within the token a
 * new one is made from, audiences within what the client (and that token) allow, and RFC 7662 §4's rule of whom a
 * token concerns. Deny by default: an empty registration list grants nothing.
 */
import { SCOPE_TOKEN } from '../config/schema.js';
import { KeymeshError } from '../errors.js';

/**
 * The scopes of an RFC 6749 §3.3 `scope` parameter; undefined when absent or empty.
 * @throws KeymeshError `ERR_INVALID_SCOPE` when malformed.
 */
export function parseScope(scope: string | undefined): string[] | undefined {
  if (scope === undefined || scope === '') return undefined;
  const scopes = scope.split(' ');
  if (!scopes.every((s) => SCOPE_TOKEN.test(s))) {
    throw new KeymeshError(
      'ERR_INVALID_SCOPE',
      'the scope is malformed (RFC 6749 §3.3: scope tokens of printable ASCII without " and \\, separated by single spaces)',
    );
  }
  return [...new Set(scopes)];
}

/**
 * The scopes a token gets: those requested, each one the client is registered for and (when made from another
 * token) one that token has; none requested, every scope of `from` the client may have, or none.
 * @throws KeymeshError `ERR_INVALID_SCOPE`
 */
export function grantScope(
  requested: readonly string[] | undefined,
  client: readonly string[],
  from: readonly string[] | undefined,
): string[] | undefined {
  if (requested === undefined) {
    const inherited = (from ?? []).filter((s) => client.includes(s));
    return inherited.length > 0 ? inherited : undefined;
  }
  if (!requested.every((s) => client.includes(s)))
    throw new KeymeshError('ERR_INVALID_SCOPE', 'a requested scope is not granted to this client');
  if (from !== undefined && !requested.every((s) => from.includes(s)))
    throw new KeymeshError('ERR_INVALID_SCOPE', 'a requested scope is not in the token it is made from');
  return [...requested];
}

/** The requested audiences (default: the first allowed), each one allowed. @throws KeymeshError `ERR_UNKNOWN_AUDIENCE` */
export function pickAudiences(
  allowed: readonly string[],
  requested: readonly string[] | undefined,
  why: string,
): string[] {
  const audiences = requested && requested.length > 0 ? [...new Set(requested)] : allowed.slice(0, 1);
  if (audiences.length === 0)
    throw new KeymeshError('ERR_UNKNOWN_AUDIENCE', `no audience to issue the token for: none that ${why}`);
  if (!audiences.every((a) => allowed.includes(a)))
    throw new KeymeshError('ERR_UNKNOWN_AUDIENCE', `a requested audience or resource is not one ${why}`);
  return audiences;
}

/** RFC 7662 §4: whether a token's claims concern `clientId`: issued to it, or naming it or a server it runs among the audiences. */
export function concerns(
  claims: Readonly<Record<string, unknown>>,
  clientId: string,
  served: readonly string[],
): boolean {
  if (claims['client_id'] === clientId) return true;
  const aud = claims['aud'];
  const audiences = Array.isArray(aud) ? aud : aud === undefined ? [] : [aud];
  return audiences.some((a) => a === clientId || served.includes(a as string));
}
