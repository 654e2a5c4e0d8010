/**
 * Caller authentication from the wsse:Security header (WS-Security UsernameToken Profile 1.0), read before
 * anything of the request body beyond its root element, so an unauthenticated request costs a bounded parse and
 * nothing more.
 *
 * - The header must carry exactly one wsse:Security with exactly one wsse:UsernameToken whose Password is
 *   PasswordText (or has no Type): the client id and its client secret, to be sent only over TLS.
 * - PasswordDigest is refused: it needs the plaintext secret on the server, and keymesh keeps only slow hashes of
 *   client secrets.
 * - A wsu:Timestamp, when present, must not have expired and must not have been created in the future, each within
 *   the tolerated clock skew; it must carry Expires (a timestamp that never expires protects nothing).
 */
import { child, children, text } from '../xml/parse.js';
import { FAULT, WsTrustFault } from './fault.js';
import { PASSWORD_DIGEST, PASSWORD_TEXT, WSSE_NS, WSU_NS } from './names.js';
import { readDateTime } from './values.js';

/** Longest username accepted, in characters. */
export const MAX_USERNAME_CHARS = 256;
/** Longest password accepted, in characters (bounds the slow hash behind `authenticate`). */
export const MAX_PASSWORD_CHARS = 1024;

/** The client id and secret of a UsernameToken. */
export interface UsernameCredentials {
  readonly username: string;
  readonly password: string;
}

const DIGEST_REFUSED =
  'PasswordDigest is not supported: keymesh stores only hashes of client secrets, so it cannot check a digest; ' +
  'send the client secret as PasswordText over TLS';

function failed(message: string): WsTrustFault {
  return new WsTrustFault(FAULT.FailedAuthentication, message);
}

/**
 * Reads the caller's credentials from the SOAP `header` and checks its timestamp against `nowS` ± `clockSkewS`.
 * @throws WsTrustFault `wst:FailedAuthentication` without usable credentials, `wsse:MessageExpired` for a stale
 *   or future timestamp, `wsse:InvalidSecurity` for a malformed one.
 */
export function readCredentials(header: Element | undefined, nowS: number, clockSkewS: number): UsernameCredentials {
  const securities = header ? children(header, WSSE_NS, 'Security') : [];
  if (securities.length !== 1)
    throw failed('the request must carry exactly one wsse:Security header with a wsse:UsernameToken');
  const security = securities[0]!;
  checkTimestamp(security, nowS, clockSkewS);
  const tokens = children(security, WSSE_NS, 'UsernameToken');
  if (tokens.length !== 1) throw failed('the wsse:Security header must carry exactly one wsse:UsernameToken');
  const token = tokens[0]!;
  const usernameElement = child(token, WSSE_NS, 'Username');
  const passwordElement = child(token, WSSE_NS, 'Password');
  if (!usernameElement || !passwordElement) throw failed('the wsse:UsernameToken needs a Username and a Password');
  const type = passwordElement.getAttribute('Type')?.trim() ?? '';
  if (type === PASSWORD_DIGEST) throw failed(DIGEST_REFUSED);
  if (type !== '' && type !== PASSWORD_TEXT) throw failed('the wsse:Password Type must be PasswordText');
  const username = text(usernameElement);
  const password = text(passwordElement);
  if (username.length === 0 || username.length > MAX_USERNAME_CHARS)
    throw failed(`the Username must be 1 to ${MAX_USERNAME_CHARS} characters`);
  if (password.length === 0 || password.length > MAX_PASSWORD_CHARS)
    throw failed(`the Password must be 1 to ${MAX_PASSWORD_CHARS} characters`);
  return { username, password };
}

function checkTimestamp(security: Element, nowS: number, clockSkewS: number): void {
  const timestamp = child(security, WSU_NS, 'Timestamp');
  if (!timestamp) return;
  const created = child(timestamp, WSU_NS, 'Created');
  const expires = child(timestamp, WSU_NS, 'Expires');
  if (!expires) throw new WsTrustFault(FAULT.InvalidSecurity, 'the wsu:Timestamp must carry wsu:Expires');
  const expiresS = readDateTime(text(expires), 'wsu:Timestamp/wsu:Expires', FAULT.InvalidSecurity);
  if (expiresS <= nowS - clockSkewS) throw new WsTrustFault(FAULT.MessageExpired, 'the message has expired');
  if (created) {
    const createdS = readDateTime(text(created), 'wsu:Timestamp/wsu:Created', FAULT.InvalidSecurity);
    if (createdS > nowS + clockSkewS)
      throw new WsTrustFault(FAULT.MessageExpired, 'the message was created in the future; check the clocks');
    if (expiresS < createdS)
      throw new WsTrustFault(FAULT.InvalidSecurity, 'the wsu:Timestamp expires before it is created');
  }
}
