/**
 * One audit line and the chain that links them.
 *
 * A line is one JSON object on one line: `{"v":1,"seq":N,"at":ISO,"node":ID,"event":KIND,...fields,"prev":HEX}`.
 * `prev` is the lowercase hex SHA-256 of the previous line's exact bytes (UTF-8, without its `\n`); the first line
 * of a log has `seq` 1 and `prev` = {@link GENESIS_PREV}. Changing, deleting, inserting or reordering any line
 * breaks the `prev` of the line after it (or the `seq` sequence); `keymesh audit verify` checks both.
 *
 * Redaction is enforced here: only the fields `AUDIT_FIELDS` lists for the kind are copied, each checked against
 * its type; a reference must be 64 hex digits; a string is cut to `MAX_AUDIT_STRING_CHARS`, and one shaped like
 * a compact JWS or JWE (base64url JSON header, a dot) is replaced by `[redacted]`.
 */
import { createHash } from 'node:crypto';
import { AUDIT_FIELDS, type AuditEvent } from './events.js';

/** Version of the line format. */
export const AUDIT_LINE_VERSION = 1;
/** The `prev` of a log's first line: 64 zeros. */
export const GENESIS_PREV = '0'.repeat(64);
/** Longest string field kept; longer ones are cut. Default is 256 characters. */
export const MAX_AUDIT_STRING_CHARS = 256;
/** Most entries of a list field (audiences). Default is 16. */
export const MAX_AUDIT_LIST_ENTRIES = 16;
/** Longest line the writer produces and the reader accepts. Default is 16384 bytes (16 KiB). */
export const MAX_AUDIT_LINE_BYTES = 16 * 1024;

/** Where the chain stands: the last line's sequence number and hash. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/** The head of an empty log. */
export const GENESIS_HEAD: ChainHead = { seq: 0, hash: GENESIS_PREV };

/** The hex SHA-256 of a line's bytes (without its newline). */
export function hashLine(line: Uint8Array | string): string {
  return createHash('sha256').update(line).digest('hex');
}

/** A compact JWS or JWE: a base64url JSON header (`eyJ`) followed by a dot. */
const JOSE_COMPACT = /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\./;
const REF = /^[0-9a-f]{64}$/;

function cleanString(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  if (JOSE_COMPACT.test(value)) return '[redacted]';
  return value.length > MAX_AUDIT_STRING_CHARS ? value.slice(0, MAX_AUDIT_STRING_CHARS) : value;
}

/** The event's allowed fields, each checked and cleaned; anything else is dropped. */
export function auditFields(event: AuditEvent): Record<string, unknown> {
  const schema = AUDIT_FIELDS[event.event] as Readonly<Record<string, string>> | undefined;
  if (!schema) throw new TypeError('unknown audit event kind');
  const source = event as unknown as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [name, type] of Object.entries(schema)) {
    const value = source[name];
    if (value === undefined) continue;
    if (type === 'string') {
      const s = cleanString(value);
      if (s !== undefined) out[name] = s;
    } else if (type === 'strings') {
      if (Array.isArray(value))
        out[name] = value
          .slice(0, MAX_AUDIT_LIST_ENTRIES)
          .map(cleanString)
          .filter((s) => s !== undefined);
    } else if (type === 'ref') {
      out[name] = typeof value === 'string' && REF.test(value) ? value : '[redacted]';
    } else if (type === 'number') {
      if (typeof value === 'number' && Number.isFinite(value)) out[name] = value;
    } else if (typeof value === 'boolean') {
      out[name] = value;
    }
  }
  return out;
}

/** The line (without newline) that follows `head` for `event`, and the new head. */
export function formatLine(
  head: ChainHead,
  event: AuditEvent,
  context: { node: string; at: Date },
): { line: string; head: ChainHead } {
  const seq = head.seq + 1;
  const line = JSON.stringify({
    v: AUDIT_LINE_VERSION,
    seq,
    at: context.at.toISOString(),
    node: context.node,
    event: event.event,
    ...auditFields(event),
    prev: head.hash,
  });
  return { line, head: { seq, hash: hashLine(line) } };
}

/**
 * The head a log's last complete line gives: its `seq` and hash.
 * @throws Error when the line is not a well-formed audit line (the reason in the message).
 */
export function headOf(line: string): ChainHead {
  const parsed = parseLine(line);
  if (typeof parsed === 'string') throw new Error(parsed);
  return { seq: parsed.seq, hash: hashLine(line) };
}

/** The parsed line, or the reason it is not a well-formed audit line. */
export function parseLine(line: string): { seq: number; prev: string; event: string } | string {
  if (Buffer.byteLength(line) > MAX_AUDIT_LINE_BYTES) return 'the line is longer than an audit line may be';
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'not JSON';
  }
  const o = value as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'not a JSON object';
  if (o['v'] !== AUDIT_LINE_VERSION) return `unknown version ${JSON.stringify(o['v'])}`;
  if (!Number.isSafeInteger(o['seq']) || (o['seq'] as number) < 1) return 'seq is not a positive integer';
  if (typeof o['prev'] !== 'string' || !REF.test(o['prev'])) return 'prev is not 64 hex digits';
  if (typeof o['event'] !== 'string') return 'event is missing';
  return { seq: o['seq'] as number, prev: o['prev'], event: o['event'] };
}
