/**
 * Strict readers and writers of the simple values a WS-Trust message carries: `xs:base64Binary`, `xs:dateTime`,
 * URIs and bounded strings. Each reader refuses what it does not fully understand with a {@link WsTrustFault},
 * never guesses (Node's base64 decoder alone skips foreign characters; `Date.parse` alone rolls 30 February over).
 */
import { FAULT, WsTrustFault } from './fault.js';

/** Longest URI or identifier keymesh reads from a request, in characters. */
export const MAX_URI_CHARS = 2048;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const XML_WHITESPACE = /[ \t\r\n]+/g;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/;

/**
 * Decodes `xs:base64Binary` (whitespace between characters allowed, as XML Schema says).
 * @throws WsTrustFault `wst:InvalidRequest` naming `what` when the text is not canonical base64.
 */
export function decodeBase64(value: string, what: string): Uint8Array {
  const compact = value.replace(XML_WHITESPACE, '');
  if (!BASE64.test(compact)) throw new WsTrustFault(FAULT.InvalidRequest, `${what} is not base64`);
  return new Uint8Array(Buffer.from(compact, 'base64'));
}

/** Encodes bytes as `xs:base64Binary`. */
export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Encodes bytes as base64url without padding (JWK members). */
export function encodeBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/**
 * Reads an `xs:dateTime` with a time zone (`Z` or `±hh:mm`) as whole seconds since the epoch, fractions dropped.
 * @throws WsTrustFault `fault` (default `wst:InvalidRequest`) naming `what` when it is not one, or names a day
 *   that does not exist.
 */
export function readDateTime(value: string, what: string, fault = FAULT.InvalidRequest): number {
  const m = DATE_TIME.exec(value.trim());
  if (!m) throw new WsTrustFault(fault, `${what} is not an xs:dateTime with a time zone`);
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59)
    throw new WsTrustFault(fault, `${what} names a time that does not exist`);
  const zone = m[8]!;
  const offsetMin =
    zone === 'Z' ? 0 : (zone.startsWith('-') ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  const utcMs = Date.UTC(year, month - 1, day, hour, minute, second) - offsetMin * 60_000;
  return Math.floor(utcMs / 1000);
}

/** Writes seconds since the epoch as an `xs:dateTime` in UTC (`2025-01-31T12:00:00Z`). */
export function writeDateTime(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Reads an absolute URI of at most {@link MAX_URI_CHARS} characters.
 * @throws WsTrustFault `wst:InvalidRequest` naming `what` otherwise.
 */
export function readUri(value: string, what: string): string {
  const uri = value.trim();
  if (uri.length > MAX_URI_CHARS || !ABSOLUTE_URI.test(uri))
    throw new WsTrustFault(
      FAULT.InvalidRequest,
      `${what} is not an absolute URI of at most ${MAX_URI_CHARS} characters`,
    );
  return uri;
}

/** True for the `xs:boolean` false values. */
export function isXsFalse(value: string): boolean {
  const v = value.trim();
  return v === 'false' || v === '0';
}
