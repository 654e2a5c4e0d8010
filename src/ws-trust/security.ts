/**
 * Caller authentication from the wsse:Security header, read before anything of the request body beyond its root
 * element, so an unauthenticated request costs a bounded parse (and, when signed, two digests) and nothing more.
 *
 * The header must carry exactly one wsse:Security with exactly one wsse:UsernameToken, and the caller authenticates
 * by exactly one of two methods:
 * - **Password** (WS-Security UsernameToken Profile 1.0): a Password that is PasswordText (or has no Type), the
 *   client id and its client secret, to be sent only over TLS. PasswordDigest is refused: it needs the plaintext
 *   secret on the server, and keymesh keeps only slow hashes of client secrets.
 * - **Signature**, for a client registered with public keys: a UsernameToken holding only the Username (the client
 *   id, no Password), a wsu:Timestamp with Created and Expires living at most
 *   {@link SIGNED_TIMESTAMP_MAX_LIFETIME_S}, and one ds:Signature in wsse:Security over exactly that Timestamp and
 *   the SOAP Body, each referenced by its wsu:Id (see signed-request.ts). The operations check the signature with
 *   the client's keys and refuse a replay until the Timestamp has expired (Expires plus the clock skew).
 * A Password and a Signature together are refused, so is neither.
 *
 * A wsu:Timestamp, when present (the signed method requires it), must not have expired and must not have been
 * created in the future, each within the tolerated clock skew; it must carry Expires (a timestamp that never
 * expires protects nothing).
 */
import { child, children, text } from '../xml/parse.js';
import { FAULT, WsTrustFault } from './fault.js';
import { DS_NS, PASSWORD_DIGEST, PASSWORD_TEXT, WSSE_NS, WSU_NS } from './names.js';
import { readSignedRequest, type SignedProof } from './signed-request.js';
import { readDateTime } from './values.js';

/** Longest username accepted, in characters. */
export const MAX_USERNAME_CHARS = 256;
/** Longest password accepted, in characters (bounds the slow hash behind `authenticate`). */
export const MAX_PASSWORD_CHARS = 1024;
/** Longest a signed request's wsu:Timestamp may live (Expires − Created), in seconds: 300 (5 minutes). */
export const SIGNED_TIMESTAMP_MAX_LIFETIME_S = 300;

/** How the caller authenticates: by client secret, or by a signature to check with the client's keys. */
export type Credentials =
  | { readonly kind: 'password'; readonly username: string; readonly password: string }
  | {
      readonly kind: 'signature';
      readonly clientId: string;
      readonly proof: SignedProof;
      /** Until when the replay id is to be remembered: the Timestamp's Expires plus the clock skew, in seconds. */
      readonly expiresAtS: number;
    };

/** A wsu:Timestamp that passed the clock checks; times are seconds since the epoch. */
interface Timestamp {
  readonly element: Element;
  readonly createdS: number | undefined;
  readonly expiresS: number;
}

const DIGEST_REFUSED =
  'PasswordDigest is not supported: keymesh stores only hashes of client secrets, so it cannot check a digest; ' +
  'send the client secret as PasswordText over TLS';

function failed(message: string): WsTrustFault {
  return new WsTrustFault(FAULT.FailedAuthentication, message);
}

/**
 * Reads the caller's credentials from the SOAP `header` and checks its timestamp against `nowS` ± `clockSkewS`;
 * a signed request's signature must cover `body`, the envelope's Body, whose digest is checked here.
 * @throws WsTrustFault `wst:FailedAuthentication` without usable credentials, for both methods at once, or for a
 *   signature keymesh does not accept or that does not match the request; `wsse:MessageExpired` for a stale or
 *   future timestamp, `wsse:InvalidSecurity` for a malformed one.
 */
export function readCredentials(
  header: Element | undefined,
  body: Element,
  nowS: number,
  clockSkewS: number,
): Credentials {
  const securities = header ? children(header, WSSE_NS, 'Security') : [];
  if (securities.length !== 1)
    throw failed('the request must carry exactly one wsse:Security header with a wsse:UsernameToken');
  const security = securities[0]!;
  const timestamp = checkTimestamp(security, nowS, clockSkewS);
  const tokens = children(security, WSSE_NS, 'UsernameToken');
  if (tokens.length !== 1) throw failed('the wsse:Security header must carry exactly one wsse:UsernameToken');
  const token = tokens[0]!;
  const usernameElement = child(token, WSSE_NS, 'Username');
  const passwordElement = child(token, WSSE_NS, 'Password');
  const signatures = children(security, DS_NS, 'Signature');
  if (passwordElement && signatures.length > 0)
    throw failed('authenticate by one method: a wsse:Password or a ds:Signature, not both');
  if (!usernameElement || (!passwordElement && signatures.length === 0))
    throw failed('the wsse:UsernameToken needs a Username and a Password, or the request a ds:Signature');
  const username = text(usernameElement);
  if (username.length === 0 || username.length > MAX_USERNAME_CHARS)
    throw failed(`the Username must be 1 to ${MAX_USERNAME_CHARS} characters`);
  if (passwordElement) return { kind: 'password', username, password: readPassword(passwordElement) };
  if (signatures.length > 1) throw failed('the wsse:Security header must carry exactly one ds:Signature');
  return readSigned(username, signatures[0]!, timestamp, body, clockSkewS);
}

function readPassword(passwordElement: Element): string {
  const type = passwordElement.getAttribute('Type')?.trim() ?? '';
  if (type === PASSWORD_DIGEST) throw failed(DIGEST_REFUSED);
  if (type !== '' && type !== PASSWORD_TEXT) throw failed('the wsse:Password Type must be PasswordText');
  const password = text(passwordElement);
  if (password.length === 0 || password.length > MAX_PASSWORD_CHARS)
    throw failed(`the Password must be 1 to ${MAX_PASSWORD_CHARS} characters`);
  return password;
}

function readSigned(
  clientId: string,
  signature: Element,
  timestamp: Timestamp | undefined,
  body: Element,
  clockSkewS: number,
): Credentials {
  if (!timestamp) throw failed('a signed request must carry a wsu:Timestamp');
  if (timestamp.createdS === undefined)
    throw new WsTrustFault(FAULT.InvalidSecurity, 'the wsu:Timestamp of a signed request must carry wsu:Created');
  if (timestamp.expiresS - timestamp.createdS > SIGNED_TIMESTAMP_MAX_LIFETIME_S)
    throw failed(`the wsu:Timestamp of a signed request may live at most ${SIGNED_TIMESTAMP_MAX_LIFETIME_S} seconds`);
  const proof = readSignedRequest(signature, { timestamp: timestamp.element, body });
  return { kind: 'signature', clientId, proof, expiresAtS: timestamp.expiresS + clockSkewS };
}

function checkTimestamp(security: Element, nowS: number, clockSkewS: number): Timestamp | undefined {
  const timestamp = child(security, WSU_NS, 'Timestamp');
  if (!timestamp) return undefined;
  const created = child(timestamp, WSU_NS, 'Created');
  const expires = child(timestamp, WSU_NS, 'Expires');
  if (!expires) throw new WsTrustFault(FAULT.InvalidSecurity, 'the wsu:Timestamp must carry wsu:Expires');
  const expiresS = readDateTime(text(expires), 'wsu:Timestamp/wsu:Expires', FAULT.InvalidSecurity);
  if (expiresS <= nowS - clockSkewS) throw new WsTrustFault(FAULT.MessageExpired, 'the message has expired');
  let createdS: number | undefined;
  if (created) {
    createdS = readDateTime(text(created), 'wsu:Timestamp/wsu:Created', FAULT.InvalidSecurity);
    if (createdS > nowS + clockSkewS)
      throw new WsTrustFault(FAULT.MessageExpired, 'the message was created in the future; check the clocks');
    if (expiresS < createdS)
      throw new WsTrustFault(FAULT.InvalidSecurity, 'the wsu:Timestamp expires before it is created');
  }
  return { element: timestamp, createdS, expiresS };
}
