/**
 * The wrapped-key file: the management key wrapped by an AES key inside a PKCS#11 token, as JSON
 *
 *   {"format":"keymesh-pkcs11-wrapped-key","version":1,"mechanism":"CKM_AES_KEY_WRAP_PAD",
 *    "wrapped":"<base64url, 40 bytes>","fingerprint":"<hex, 16 bytes>","epoch":2}
 *
 * `epoch` is the management key's epoch (`src/management-key/`); it is absent for epoch 1, the cluster's first key.
 * `wrapped` is RFC 5649 (AES key wrap with padding) of the 32-byte key: 40 bytes, with an integrity check the token
 * verifies when it unwraps. `fingerprint` is the management key's one-way fingerprint (the one the data directory
 * stores), so an operator can tell which cluster a file belongs to, and the unseal checks what the token
 * unwrapped against it. The file holds no secret a token-less reader can use; it is versioned and at most
 * {@link WRAPPED_KEY_FILE_MAX_BYTES} long.
 */
import { writeFileSync } from 'node:fs';
import { z } from 'zod';
import { KeymeshError } from '../../errors.js';
import { MANAGEMENT_KEY_BYTES } from '../management-key.js';
import { readBoundedFile } from './bounded-file.js';

/** Largest wrapped-key file read. Default is 4096 bytes (a valid one is under 250). */
export const WRAPPED_KEY_FILE_MAX_BYTES = 4096;

/** The `format` field. */
export const WRAPPED_KEY_FORMAT = 'keymesh-pkcs11-wrapped-key';

/** The version this release writes and reads. */
export const WRAPPED_KEY_VERSION = 1;

/** The PKCS#11 mechanism of version 1. */
export const WRAP_MECHANISM = 'CKM_AES_KEY_WRAP_PAD';

/** Length of an RFC 5649 wrap of a management key: the key rounded up to 8 bytes, plus the 8-byte integrity block. */
export const WRAPPED_KEY_BYTES = Math.ceil(MANAGEMENT_KEY_BYTES / 8) * 8 + 8;

/** A wrapped management key and the fingerprint of the key inside. */
export interface WrappedKey {
  readonly wrapped: Buffer;
  /** `ManagementKey.fingerprint()` of the wrapped key (hex). */
  readonly fingerprint: string;
  /** The key's epoch; undefined means 1. */
  readonly epoch?: number;
}

const fileSchema = z.strictObject({
  format: z.literal(WRAPPED_KEY_FORMAT),
  version: z.literal(WRAPPED_KEY_VERSION),
  mechanism: z.literal(WRAP_MECHANISM),
  wrapped: z.string().regex(/^[A-Za-z0-9_-]+$/, 'base64url'),
  fingerprint: z.string().regex(/^[0-9a-f]{32}$/, '32 lowercase hex digits'),
  epoch: z.number().int().min(2).max(1_000_000).optional(),
});

/** The file's text for a wrapped key. */
export function encodeWrappedKey(key: WrappedKey): string {
  return `${JSON.stringify({ format: WRAPPED_KEY_FORMAT, version: WRAPPED_KEY_VERSION, mechanism: WRAP_MECHANISM, wrapped: key.wrapped.toString('base64url'), fingerprint: key.fingerprint, ...(key.epoch !== undefined && key.epoch > 1 ? { epoch: key.epoch } : {}) })}\n`;
}

/**
 * Parses a wrapped-key file's text; `source` names it in errors.
 * @throws KeymeshError `ERR_PKCS11_BLOB_MALFORMED` unless it is a version-1 file with a wrap of the right size.
 */
export function decodeWrappedKey(text: string, source: string): WrappedKey {
  const malformed = (why: string) =>
    new KeymeshError(
      'ERR_PKCS11_BLOB_MALFORMED',
      `the wrapped-key file ${source} ${why}; make it again with "keymesh pkcs11-wrap-key"`,
    );
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw malformed('is not JSON (truncated?)');
  }
  if (
    typeof json === 'object' &&
    json !== null &&
    'version' in json &&
    json.version !== WRAPPED_KEY_VERSION &&
    typeof json.version === 'number'
  ) {
    throw malformed(`has version ${json.version}; this release reads version ${WRAPPED_KEY_VERSION}`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw malformed(`is not a keymesh wrapped key (${issue.path.join('.') || 'the file'}: ${issue.message})`);
  }
  const wrapped = Buffer.from(parsed.data.wrapped, 'base64url');
  if (wrapped.length !== WRAPPED_KEY_BYTES)
    throw malformed(`holds a wrap of ${wrapped.length} bytes; a wrapped management key has ${WRAPPED_KEY_BYTES}`);
  return {
    wrapped,
    fingerprint: parsed.data.fingerprint,
    ...(parsed.data.epoch !== undefined ? { epoch: parsed.data.epoch } : {}),
  };
}

/**
 * Reads and parses a wrapped-key file.
 * @throws KeymeshError `ERR_PKCS11_BLOB_MALFORMED` when it is unreadable, too large or malformed.
 */
export function readWrappedKeyFile(path: string): WrappedKey {
  const bytes = readBoundedFile(
    path,
    WRAPPED_KEY_FILE_MAX_BYTES,
    (problem, cause) =>
      new KeymeshError(
        'ERR_PKCS11_BLOB_MALFORMED',
        problem.kind === 'too-large'
          ? `the wrapped-key file ${path} is larger than ${WRAPPED_KEY_FILE_MAX_BYTES} bytes`
          : `cannot read the wrapped-key file ${path} (${problem.code})`,
        { cause },
      ),
  );
  return decodeWrappedKey(bytes.toString('utf8'), path);
}

/** Writes a new wrapped-key file (mode 0600); an existing file is never overwritten (`EEXIST`). */
export function writeWrappedKeyFile(path: string, key: WrappedKey): void {
  writeFileSync(path, encodeWrappedKey(key), { flag: 'wx', mode: 0o600 });
}
