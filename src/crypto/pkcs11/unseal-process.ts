/**
 * Unsealing the management key within a deadline. PKCS#11 calls block their thread until the token answers, and a
 * token can hang (a network HSM, a stuck reader), so the unseal runs in a child process (`unseal-child.ts`) that
 * is killed when `timeoutMs` passes (a monotonic timer). The PKCS#11 module is thus never loaded into the node's
 * own process, and a module that crashes ends only the child.
 *
 * The child gets the node's environment (a module may need its own variables, like `SOFTHSM2_CONF`) without the
 * node's other secrets; the request (paths and labels, no PIN) and the answer go over the IPC channel.
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Pkcs11UnsealConfig } from '../../config/types.js';
import { ERROR_CODES, KeymeshError, type ErrorCode } from '../../errors.js';
import { ManagementKey } from '../management-key.js';
import type { UnsealAnswer } from './unseal-child.js';
import type { UnsealRequest } from './unseal.js';

/** Variables the unseal process does not get: the node's secrets. */
const WITHHELD_ENV = ['KEYMESH_MANAGEMENT_KEY', 'KEYMESH_ADMIN_TOKEN'];

/** How to run the unseal. */
export interface UnsealProcessOptions {
  /** The node's environment; the PIN variable is read from it. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The script of the unseal process. Default is `unseal-child.js` beside this module (tests point at `dist/`). */
  readonly childScript?: string;
}

/**
 * Unseals the management key that `config` points at, within `config.timeoutMs`.
 * @throws KeymeshError `ERR_PKCS11_TIMEOUT` when the deadline passes (the process is killed), `ERR_PKCS11_MODULE`
 *   when the process dies without an answer, and every error of `unwrapManagementKey`.
 */
export function unsealManagementKey(config: Pkcs11UnsealConfig, options: UnsealProcessOptions): Promise<ManagementKey> {
  const { timeoutMs, ...request } = config;
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(options.env))
    if (value !== undefined && !WITHHELD_ENV.includes(name)) env[name] = value;
  const script = options.childScript ?? fileURLToPath(new URL('./unseal-child.js', import.meta.url));
  const child = fork(script, [], {
    env,
    execArgv: [],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'json',
  });

  return new Promise<ManagementKey>((resolve, reject) => {
    let settled = false;
    const finish = (outcome: ManagementKey | KeymeshError) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (outcome instanceof KeymeshError) reject(outcome);
      else resolve(outcome);
    };
    const timer = setTimeout(
      () =>
        finish(
          new KeymeshError(
            'ERR_PKCS11_TIMEOUT',
            `unsealing the management key took longer than ${timeoutMs} ms (managementKeyPkcs11.timeoutMs); the unseal process was killed`,
          ),
        ),
      timeoutMs,
    );
    child.on('error', (err) =>
      finish(new KeymeshError('ERR_PKCS11_MODULE', `cannot run the unseal process: ${err.message}`, { cause: err })),
    );
    // 'close' comes after the IPC channel closed, so an answer sent before exiting has arrived by then
    child.once('close', (code, signal) =>
      finish(
        new KeymeshError(
          'ERR_PKCS11_MODULE',
          `the unseal process ended (${signal ?? `exit code ${code}`}) without an answer; the PKCS#11 module may have crashed`,
        ),
      ),
    );
    child.once('message', (answer: unknown) => finish(fromAnswer(answer)));
    child.send(request satisfies UnsealRequest);
  });
}

function fromAnswer(answer: unknown): ManagementKey | KeymeshError {
  const a = answer as Partial<Record<keyof UnsealAnswer | 'key' | 'code' | 'message', unknown>>;
  if (a?.ok === true && typeof a.key === 'string') {
    try {
      return ManagementKey.parse(a.key, 'the PKCS#11 unseal');
    } catch (err) {
      return err as KeymeshError;
    }
  }
  if (
    a?.ok === false &&
    typeof a.code === 'string' &&
    typeof a.message === 'string' &&
    Object.hasOwn(ERROR_CODES, a.code)
  ) {
    return new KeymeshError(a.code as ErrorCode, a.message);
  }
  return new KeymeshError('ERR_PKCS11_MODULE', 'the unseal process gave an answer that is not one');
}
