/**
 * `keymesh pkcs11-wrap-key`: wraps the management key (from `KEYMESH_MANAGEMENT_KEY`, else standard input) under an
 * AES key in a PKCS#11 token and writes the wrapped-key file a node's `managementKeyPkcs11.wrappedKeyFile` names.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { KeymeshError } from '../errors.js';
import { readPin } from '../crypto/pkcs11/pin.js';
import { wrapManagementKey } from '../crypto/pkcs11/wrap.js';
import { writeWrappedKeyFile } from '../crypto/pkcs11/wrapped-key-file.js';

/** Largest management key read from standard input. */
const STDIN_MAX_BYTES = 4096;

/** The command's options (commander has checked that at most one of each pair is given). */
export interface Pkcs11WrapKeyOptions {
  module: string;
  tokenLabel?: string;
  slot?: number;
  keyLabel: string;
  pinEnv?: string;
  pinFile?: string;
  out: string;
  generateAesKey?: boolean;
}

/** What the command reads and writes besides files; tests may replace it. */
export interface Pkcs11WrapKeyIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdin: AsyncIterable<Buffer | string> & { readonly isTTY?: boolean };
  readonly stdout: { write(text: string): unknown };
  readonly fail: (message: string) => never;
}

/** Runs the command. */
export async function runPkcs11WrapKey(o: Pkcs11WrapKeyOptions, io: Pkcs11WrapKeyIo): Promise<void> {
  if (o.tokenLabel === undefined && o.slot === undefined) io.fail('give --token-label or --slot');
  if (o.pinEnv === undefined && o.pinFile === undefined) io.fail('give --pin-env or --pin-file (never the PIN itself)');
  const out = resolve(o.out);
  if (existsSync(out))
    io.fail(`${out} exists; a wrapped-key file is never overwritten (remove it first, or choose another --out)`);
  const pinSource = { pinEnv: o.pinEnv, pinFile: o.pinFile === undefined ? undefined : resolve(o.pinFile) };
  const pin = readPin(pinSource, io.env);
  const managementKey = io.env.KEYMESH_MANAGEMENT_KEY?.trim() || (await readStdin(io));
  const module = resolve(o.module);
  const result = await wrapManagementKey({
    module,
    tokenLabel: o.tokenLabel,
    slot: o.slot,
    keyLabel: o.keyLabel,
    pin,
    managementKey,
    generateAesKey: o.generateAesKey === true,
  });
  writeWrappedKeyFile(out, result.wrappedKey);
  const config = {
    module,
    ...(o.tokenLabel !== undefined ? { tokenLabel: o.tokenLabel } : { slot: o.slot }),
    keyLabel: o.keyLabel,
    ...(o.pinEnv !== undefined ? { pinEnv: o.pinEnv } : { pinFile: pinSource.pinFile }),
    wrappedKeyFile: out,
  };
  io.stdout.write(
    `wrote ${out}: the management key (fingerprint ${result.wrappedKey.fingerprint}) wrapped by AES key "${o.keyLabel}" in ${result.tokenName}${result.generatedAesKey ? ', created now' : ''}; the token unwrapped it again to check\n`,
  );
  io.stdout.write(`config: ${JSON.stringify({ managementKeyPkcs11: config })}\n`);
}

async function readStdin(io: Pkcs11WrapKeyIo): Promise<string> {
  if (io.stdin.isTTY) io.fail('set KEYMESH_MANAGEMENT_KEY or pipe the management key on standard input');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of io.stdin) {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    size += buf.length;
    if (size > STDIN_MAX_BYTES)
      throw new KeymeshError(
        'ERR_MANAGEMENT_KEY_INVALID',
        `standard input holds more than ${STDIN_MAX_BYTES} bytes; a management key is 43 characters of base64url`,
      );
    chunks.push(buf);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '')
    throw new KeymeshError(
      'ERR_MANAGEMENT_KEY_MISSING',
      'no management key: set KEYMESH_MANAGEMENT_KEY or pipe it on standard input',
    );
  return text;
}
