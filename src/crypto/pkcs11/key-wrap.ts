/**
 * Wrapping and unwrapping the management key with an AES key that never leaves the token (RFC 5649,
 * `CKM_AES_KEY_WRAP_PAD`), and creating that AES key.
 *
 * The management key enters and leaves the token as a short-lived session object (`CKA_TOKEN` false): created
 * from its bytes to be wrapped, or produced by the unwrap and read once; either way it is destroyed before the
 * call returns. The AES key is a token object that is sensitive and not extractable, and may only wrap and unwrap.
 */
import { KeymeshError } from '../../errors.js';
import { MANAGEMENT_KEY_BYTES } from '../management-key.js';
import type { Attribute, Handle } from './binding.js';
import { describePkcs11Error, ckrOf } from './binding.js';
import { call, type TokenSession } from './token-session.js';
import { WRAPPED_KEY_BYTES } from './wrapped-key-file.js';

/** The template of the management key as a session object: secret, readable by this session only, never stored. */
function secretTemplate(s: TokenSession): Attribute[] {
  const { ck } = s;
  return [
    { type: ck.CKA_CLASS, value: ck.CKO_SECRET_KEY },
    { type: ck.CKA_KEY_TYPE, value: ck.CKK_GENERIC_SECRET },
    { type: ck.CKA_TOKEN, value: false },
    { type: ck.CKA_PRIVATE, value: true },
    { type: ck.CKA_SENSITIVE, value: false },
    { type: ck.CKA_EXTRACTABLE, value: true },
  ];
}

/**
 * Makes a 256-bit AES key labelled `label` in the token: sensitive, not extractable, for wrapping and unwrapping
 * only. Needs a read-write session.
 */
export function generateWrappingKey(s: TokenSession, label: string): Handle {
  const { ck } = s;
  return call(
    () =>
      s.lib.C_GenerateKey(s.handle, { mechanism: ck.CKM_AES_KEY_GEN }, [
        { type: ck.CKA_CLASS, value: ck.CKO_SECRET_KEY },
        { type: ck.CKA_KEY_TYPE, value: ck.CKK_AES },
        { type: ck.CKA_VALUE_LEN, value: 32 },
        { type: ck.CKA_LABEL, value: label },
        { type: ck.CKA_TOKEN, value: true },
        { type: ck.CKA_PRIVATE, value: true },
        { type: ck.CKA_SENSITIVE, value: true },
        { type: ck.CKA_EXTRACTABLE, value: false },
        { type: ck.CKA_WRAP, value: true },
        { type: ck.CKA_UNWRAP, value: true },
        { type: ck.CKA_ENCRYPT, value: false },
        { type: ck.CKA_DECRYPT, value: false },
        { type: ck.CKA_SIGN, value: false },
        { type: ck.CKA_VERIFY, value: false },
        { type: ck.CKA_DERIVE, value: false },
      ]),
    `cannot create the AES key "${label}" in ${s.tokenName}`,
  );
}

/** Wraps the management key's bytes under `aesKey`. */
export function wrapSecret(s: TokenSession, aesKey: Handle, secret: Buffer): Buffer {
  const { ck } = s;
  const object = call(
    () => s.lib.C_CreateObject(s.handle, [...secretTemplate(s), { type: ck.CKA_VALUE, value: secret }]),
    `cannot load the management key into ${s.tokenName} to wrap it`,
  );
  try {
    return Buffer.from(
      call(
        () =>
          s.lib.C_WrapKey(
            s.handle,
            { mechanism: ck.CKM_AES_KEY_WRAP_PAD },
            aesKey,
            object,
            Buffer.alloc(WRAPPED_KEY_BYTES + 16),
          ),
        `${s.tokenName} cannot wrap the management key`,
      ),
    );
  } finally {
    destroy(s, object);
  }
}

/**
 * Unwraps `wrapped` with `aesKey` and returns the key's bytes (the caller zeroes them when done).
 * @throws KeymeshError `ERR_PKCS11_UNWRAP_FAILED` when the token refuses (another key, a tampered wrap, a key
 *   without `CKA_UNWRAP`) or what it unwrapped is not a management key.
 */
export function unwrapSecret(s: TokenSession, aesKey: Handle, wrapped: Buffer): Buffer {
  const { ck } = s;
  let object: Handle;
  try {
    object = s.lib.C_UnwrapKey(s.handle, { mechanism: ck.CKM_AES_KEY_WRAP_PAD }, aesKey, wrapped, secretTemplate(s));
  } catch (err) {
    const why =
      ckrOf(err) === 'CKR_KEY_FUNCTION_NOT_PERMITTED'
        ? 'the AES key may not unwrap (CKA_UNWRAP is false)'
        : `wrapped under another key, or altered (${describePkcs11Error(err)})`;
    throw new KeymeshError('ERR_PKCS11_UNWRAP_FAILED', `${s.tokenName} cannot unwrap the management key: ${why}`, {
      cause: err,
    });
  }
  try {
    const value = call(
      () => s.lib.C_GetAttributeValue(s.handle, object, [{ type: ck.CKA_VALUE }]),
      `cannot read the unwrapped management key from ${s.tokenName}`,
    )[0]?.value;
    if (!value || value.length !== MANAGEMENT_KEY_BYTES) {
      value?.fill(0);
      throw new KeymeshError(
        'ERR_PKCS11_UNWRAP_FAILED',
        `${s.tokenName} unwrapped ${value?.length ?? 0} bytes; a management key has ${MANAGEMENT_KEY_BYTES}`,
      );
    }
    return value;
  } catch (err) {
    if (err instanceof KeymeshError && err.code === 'ERR_PKCS11_MODULE')
      throw new KeymeshError('ERR_PKCS11_UNWRAP_FAILED', err.message, { cause: err.cause });
    throw err;
  } finally {
    destroy(s, object);
  }
}

function destroy(s: TokenSession, object: Handle): void {
  try {
    s.lib.C_DestroyObject(s.handle, object);
  } catch {
    // a session object also ends with its session, which the caller closes next
  }
}
