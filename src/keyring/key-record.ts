/**
 * The stored and transmitted form of a key: a versioned, size-bounded msgpack record. Records are immutable
 * except for `revokedAt`. The private half is inside the record, which is why a record is only ever written
 * sealed (DESIGN §5) and why {@link KeyEntry} keeps it in a private field once decoded.
 */
import { pack, unpack } from 'msgpackr';
import { z } from 'zod';
import { KEY_USES } from '../config/defaults.js';
import { KeymeshError } from '../errors.js';

/** Current key-record format version. */
export const KEY_RECORD_VERSION = 1;

/** Largest encoded record accepted (an RSA-4096 private JWK is about 3.3 KiB). */
export const KEY_RECORD_MAX_BYTES = 16 * 1024;

/** A key's use. */
export type KeyUse = (typeof KEY_USES)[number];

const jwkSchema = z.record(
  z.string().max(32),
  z.union([z.string().max(4096), z.array(z.string().max(64)).max(16), z.boolean()]),
);

const time = z.number().int().min(0);

/** Validates a decoded record. */
export const keyRecordSchema = z.strictObject({
  v: z.literal(KEY_RECORD_VERSION),
  kid: z.string().regex(/^[A-Za-z0-9_-]{16,86}$/),
  realm: z.string().min(1).max(64),
  use: z.enum(KEY_USES),
  alg: z.string().min(1).max(32),
  createdAt: time,
  createdBy: z.string().min(1).max(64),
  publishAt: time,
  activateAt: time,
  retireAt: time,
  expireAt: time,
  revokedAt: time.optional(),
  publicJwk: jwkSchema.optional(),
  privateJwk: jwkSchema,
});

/** A key record as stored. */
export type KeyRecord = z.output<typeof keyRecordSchema>;

/** Encodes a record (msgpack). */
export function encodeKeyRecord(record: KeyRecord): Buffer {
  return pack(record);
}

/**
 * Decodes and validates a record.
 * @throws KeymeshError `ERR_RECORD_CORRUPT` when the bytes are oversized, not msgpack or not a valid record.
 */
export function decodeKeyRecord(bytes: Uint8Array, where: string): KeyRecord {
  if (bytes.byteLength > KEY_RECORD_MAX_BYTES)
    throw new KeymeshError('ERR_RECORD_CORRUPT', `key record ${where} is larger than ${KEY_RECORD_MAX_BYTES} bytes`);
  let value: unknown;
  try {
    value = unpack(bytes);
  } catch (err) {
    throw new KeymeshError('ERR_RECORD_CORRUPT', `key record ${where} is not valid msgpack`, { cause: err });
  }
  const parsed = keyRecordSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new KeymeshError(
      'ERR_RECORD_CORRUPT',
      `key record ${where} is malformed at ${issue?.path.join('.') || '(root)'}`,
    );
  }
  const r = parsed.data;
  if (r.publishAt > r.retireAt || r.activateAt > r.retireAt || r.retireAt > r.expireAt) {
    throw new KeymeshError('ERR_RECORD_CORRUPT', `key record ${where} has times out of order`);
  }
  return r;
}
