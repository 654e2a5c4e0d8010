/**
 * Unsealing the management key in this process: read the wrapped-key file and the PIN, log in to the token, find
 * the AES key by its label, unwrap, and check what came out against the file's fingerprint. The session is closed
 * on every path. A node runs this in a child process it can kill (`unseal-process.ts`); nothing in the node's own
 * process loads the PKCS#11 module.
 */
import type { Pkcs11UnsealConfig } from '../../config/types.js';
import { KeymeshError } from '../../errors.js';
import { ManagementKey } from '../management-key.js';
import { unwrapSecret } from './key-wrap.js';
import { readPin } from './pin.js';
import { withTokenSession } from './token-session.js';
import { readWrappedKeyFile } from './wrapped-key-file.js';

/** What the unseal needs: `managementKeyPkcs11` without its timeout. */
export type UnsealRequest = Omit<Pkcs11UnsealConfig, 'timeoutMs'>;

/**
 * Unwraps the management key and returns it as base64url text.
 * @throws KeymeshError `ERR_PKCS11_BLOB_MALFORMED`, `ERR_PKCS11_PIN`, `ERR_PKCS11_MODULE`,
 *   `ERR_PKCS11_TOKEN_NOT_FOUND`, `ERR_PKCS11_KEY_NOT_FOUND`, `ERR_PKCS11_UNWRAP_FAILED`.
 */
export async function unwrapManagementKey(
  request: UnsealRequest,
  env: Readonly<Record<string, string | undefined>>,
): Promise<string> {
  const file = readWrappedKeyFile(request.wrappedKeyFile);
  const pin = readPin(request, env);
  return withTokenSession(request, pin, { readWrite: false }, (session) => {
    const aesKey = session.findAesKey(request.keyLabel);
    if (!aesKey)
      throw new KeymeshError(
        'ERR_PKCS11_KEY_NOT_FOUND',
        `${session.tokenName} holds no AES key labelled "${request.keyLabel}"`,
      );
    const bytes = unwrapSecret(session, aesKey, file.wrapped);
    const text = `${file.epoch !== undefined ? `${file.epoch}.` : ''}${bytes.toString('base64url')}`;
    bytes.fill(0);
    if (ManagementKey.parse(text, session.tokenName).fingerprint() !== file.fingerprint) {
      throw new KeymeshError(
        'ERR_PKCS11_UNWRAP_FAILED',
        `the key ${session.tokenName} unwrapped does not match the fingerprint in ${request.wrappedKeyFile}; the file was altered`,
      );
    }
    return text;
  });
}
