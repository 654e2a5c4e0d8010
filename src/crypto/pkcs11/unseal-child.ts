/**
 * The unseal process, started by `unseal-process.ts` (never by hand): it takes one request over IPC, unwraps the
 * management key in the token, answers `{ok: true, key}` or `{ok: false, code, message}`, and exits. It writes
 * nothing to stdout; a PKCS#11 module's own complaints go to stderr.
 */
import { isKeymeshError } from '../../errors.js';
import { unwrapManagementKey, type UnsealRequest } from './unseal.js';

/** The answer of the unseal process. */
export type UnsealAnswer =
  | { readonly ok: true; readonly key: string }
  | { readonly ok: false; readonly code: string; readonly message: string };

function answerFor(err: unknown): UnsealAnswer {
  if (isKeymeshError(err)) return { ok: false, code: err.code, message: err.message };
  const first = (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);
  return { ok: false, code: 'ERR_PKCS11_MODULE', message: `the unseal failed unexpectedly: ${first}` };
}

process.once('message', (request: UnsealRequest) => {
  void unwrapManagementKey(request, process.env)
    .then((key): UnsealAnswer => ({ ok: true, key }), answerFor)
    .then((answer) => process.send?.(answer, () => process.disconnect()));
});
