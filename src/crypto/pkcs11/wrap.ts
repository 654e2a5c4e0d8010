/**
 * Making a wrapped-key file (`keymesh pkcs11-wrap-key`): wrap the management key under the token's AES key, then
 * have the token unwrap the result again and compare, so a file is only ever written once the token has shown it
 * can open it. Optionally creates the AES key first.
 */
import { KeymeshError } from '../../errors.js';
import { ManagementKey } from '../management-key.js';
import { generateWrappingKey, unwrapSecret, wrapSecret } from './key-wrap.js';
import { withTokenSession, type TokenSelector } from './token-session.js';
import { WRAPPED_KEY_BYTES, type WrappedKey } from './wrapped-key-file.js';

/** What to wrap, where. */
export interface WrapRequest extends TokenSelector {
  /** Label of the AES key. */
  readonly keyLabel: string;
  readonly pin: string;
  /** The management key as base64url text. */
  readonly managementKey: string;
  /** Create the AES key when the token has none with that label. */
  readonly generateAesKey: boolean;
}

/** The wrapped key and what was done to make it. */
export interface WrapResult {
  readonly wrappedKey: WrappedKey;
  /** Whether the AES key was created now. */
  readonly generatedAesKey: boolean;
  /** How errors and messages name the token. */
  readonly tokenName: string;
}

/**
 * Wraps the management key and checks that the token unwraps it again.
 * @throws KeymeshError `ERR_MANAGEMENT_KEY_INVALID`, `ERR_PKCS11_KEY_NOT_FOUND` (no AES key and no
 *   `generateAesKey`), `ERR_PKCS11_UNWRAP_FAILED` (the check failed), and the errors of opening a session.
 */
export async function wrapManagementKey(request: WrapRequest): Promise<WrapResult> {
  const key = ManagementKey.parse(request.managementKey, 'the management key to wrap');
  const fingerprint = key.fingerprint();
  // the token wraps the key's 32 bytes; its epoch goes into the file beside them
  const secret = Buffer.from(request.managementKey.trim().replace(/^[0-9]+\./, ''), 'base64url');
  try {
    return await withTokenSession(request, request.pin, { readWrite: request.generateAesKey }, (session) => {
      let aesKey = session.findAesKey(request.keyLabel);
      const generatedAesKey = !aesKey;
      if (!aesKey) {
        if (!request.generateAesKey)
          throw new KeymeshError(
            'ERR_PKCS11_KEY_NOT_FOUND',
            `${session.tokenName} holds no AES key labelled "${request.keyLabel}" (--generate-aes-key creates one)`,
          );
        aesKey = generateWrappingKey(session, request.keyLabel);
      }
      const wrapped = wrapSecret(session, aesKey, secret);
      const check = unwrapSecret(session, aesKey, wrapped);
      const same = wrapped.length === WRAPPED_KEY_BYTES && check.equals(secret);
      check.fill(0);
      if (!same)
        throw new KeymeshError(
          'ERR_PKCS11_UNWRAP_FAILED',
          `${session.tokenName} did not unwrap its own wrap of the management key back to the same key`,
        );
      return {
        wrappedKey: { wrapped, fingerprint, ...(key.epoch > 1 ? { epoch: key.epoch } : {}) },
        generatedAesKey,
        tokenName: session.tokenName,
      };
    });
  } finally {
    secret.fill(0);
  }
}
