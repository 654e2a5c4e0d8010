/**
 * The token's user PIN, from the environment variable or the file the config names. The config never holds the
 * PIN itself, and no message here ever contains it.
 */
import { KeymeshError } from '../../errors.js';
import { readBoundedFile } from './bounded-file.js';

/** Largest PIN file read. Default is 1024 bytes (PKCS#11 PINs are far shorter). */
export const PIN_FILE_MAX_BYTES = 1024;

/** Where the PIN is: exactly one of the two. */
export interface PinSource {
  /** Name of the environment variable holding the PIN. */
  readonly pinEnv?: string | undefined;
  /** Path of a file holding the PIN; one trailing newline is ignored. */
  readonly pinFile?: string | undefined;
}

/**
 * Reads the PIN.
 * @throws KeymeshError `ERR_PKCS11_PIN` when the variable is unset or empty, or the file is unreadable, empty or
 *   larger than {@link PIN_FILE_MAX_BYTES}.
 */
export function readPin(source: PinSource, env: Readonly<Record<string, string | undefined>>): string {
  if (source.pinEnv !== undefined) {
    const pin = env[source.pinEnv];
    if (pin === undefined || pin === '')
      throw new KeymeshError(
        'ERR_PKCS11_PIN',
        `the environment variable ${source.pinEnv} (the PIN, named by pinEnv) is not set or empty`,
      );
    return pin;
  }
  if (source.pinFile === undefined) throw new KeymeshError('ERR_PKCS11_PIN', 'no PIN source: give pinEnv or pinFile');
  const text = readBoundedFile(
    source.pinFile,
    PIN_FILE_MAX_BYTES,
    (problem, cause) =>
      new KeymeshError(
        'ERR_PKCS11_PIN',
        problem.kind === 'too-large'
          ? `the PIN file ${source.pinFile} is larger than ${PIN_FILE_MAX_BYTES} bytes`
          : `cannot read the PIN file ${source.pinFile} (${problem.code})`,
        { cause },
      ),
  ).toString('utf8');
  const pin = text.replace(/\r?\n$/, '');
  if (pin === '') throw new KeymeshError('ERR_PKCS11_PIN', `the PIN file ${source.pinFile} is empty`);
  return pin;
}
