/**
 * The PKCS#11 binding (`pkcs11js`, an optional dependency with a native part), loaded only when asked for: a node
 * that does not use `managementKeyPkcs11` never loads it, and a build or an install without it still works.
 *
 * Only the narrow part of its API that keymesh uses is typed here, so nothing at compile time needs the package.
 */
import { KeymeshError } from '../../errors.js';

/** A PKCS#11 handle (slot, session or object), as the binding gives it. */
export type Handle = Buffer;

/** One attribute of a template. */
export interface Attribute {
  readonly type: number;
  readonly value?: number | boolean | string | Buffer;
}

/** A mechanism without parameters. */
export interface Mechanism {
  readonly mechanism: number;
}

/** The calls keymesh makes on a loaded PKCS#11 module (synchronous: each blocks its thread until the token answers). */
export interface Pkcs11Library {
  load(path: string): void;
  close(): void;
  C_Initialize(): void;
  C_Finalize(): void;
  C_GetSlotList(tokenPresent?: boolean): Handle[];
  C_GetTokenInfo(slot: Handle): { readonly label: string };
  C_OpenSession(slot: Handle, flags: number): Handle;
  C_CloseSession(session: Handle): void;
  C_Login(session: Handle, userType: number, pin?: string): void;
  C_Logout(session: Handle): void;
  C_FindObjectsInit(session: Handle, template: Attribute[]): void;
  C_FindObjects(session: Handle, maxObjectCount: number): Handle[];
  C_FindObjectsFinal(session: Handle): void;
  C_GenerateKey(session: Handle, mechanism: Mechanism, template: Attribute[]): Handle;
  C_CreateObject(session: Handle, template: Attribute[]): Handle;
  C_DestroyObject(session: Handle, object: Handle): void;
  C_GetAttributeValue(
    session: Handle,
    object: Handle,
    template: Attribute[],
  ): Array<{ readonly type: number; readonly value?: Buffer }>;
  C_WrapKey(session: Handle, mechanism: Mechanism, wrappingKey: Handle, key: Handle, wrappedKey: Buffer): Buffer;
  C_UnwrapKey(
    session: Handle,
    mechanism: Mechanism,
    unwrappingKey: Handle,
    wrappedKey: Buffer,
    template: Attribute[],
  ): Handle;
}

/** The PKCS#11 constants keymesh uses, read from the binding (their values are fixed by the standard). */
export const CONSTANT_NAMES = [
  'CKA_CLASS',
  'CKA_TOKEN',
  'CKA_PRIVATE',
  'CKA_LABEL',
  'CKA_VALUE',
  'CKA_KEY_TYPE',
  'CKA_SENSITIVE',
  'CKA_ENCRYPT',
  'CKA_DECRYPT',
  'CKA_WRAP',
  'CKA_UNWRAP',
  'CKA_SIGN',
  'CKA_VERIFY',
  'CKA_DERIVE',
  'CKA_VALUE_LEN',
  'CKA_EXTRACTABLE',
  'CKO_SECRET_KEY',
  'CKK_AES',
  'CKK_GENERIC_SECRET',
  'CKM_AES_KEY_GEN',
  'CKM_AES_KEY_WRAP_PAD',
  'CKF_SERIAL_SESSION',
  'CKF_RW_SESSION',
  'CKU_USER',
] as const;

/** The constants by name. */
export type Pkcs11Constants = Readonly<Record<(typeof CONSTANT_NAMES)[number], number>>;

/** The loaded binding: a fresh library object and the constants. */
export interface Pkcs11Binding {
  createLibrary(): Pkcs11Library;
  readonly ck: Pkcs11Constants;
}

// a specifier TypeScript does not resolve, so compiling needs no pkcs11js
const PACKAGE = 'pkcs11js';

/**
 * Loads `pkcs11js` (and its native addon).
 * @throws KeymeshError `ERR_PKCS11_MODULE` when it is not installed or its native part did not build.
 */
export async function loadPkcs11Binding(): Promise<Pkcs11Binding> {
  let mod: Record<string, unknown>;
  try {
    const imported = (await import(PACKAGE)) as { default?: Record<string, unknown> };
    mod = imported.default ?? (imported as Record<string, unknown>);
  } catch (err) {
    throw new KeymeshError(
      'ERR_PKCS11_MODULE',
      `the optional dependency ${PACKAGE} cannot be loaded (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); install it with "npm install ${PACKAGE}" (its native part builds with node-gyp: python3, make and a C++ compiler)`,
      { cause: err },
    );
  }
  const ck = {} as Record<string, number>;
  for (const name of CONSTANT_NAMES) {
    const value = mod[name];
    if (typeof value !== 'number')
      throw new KeymeshError(
        'ERR_PKCS11_MODULE',
        `${PACKAGE} does not define ${name}; it is not a version keymesh can use`,
      );
    ck[name] = value;
  }
  const Library = mod.PKCS11 as new () => Pkcs11Library;
  if (typeof Library !== 'function')
    throw new KeymeshError('ERR_PKCS11_MODULE', `${PACKAGE} has no PKCS11 class; it is not a version keymesh can use`);
  return { createLibrary: () => new Library(), ck: ck as Pkcs11Constants };
}

/** The `CKR_*` name of a PKCS#11 error the binding threw (its message is the name), or undefined for other errors. */
export function ckrOf(err: unknown): string | undefined {
  if (!(err instanceof Error) || err.name !== 'Pkcs11Error') return undefined;
  return /^CKR_[A-Z0-9_]+$/.exec(err.message)?.[0];
}

/** A short, secret-free description of an error from the binding: its `CKR_*` name, or its message's first line. */
export function describePkcs11Error(err: unknown): string {
  return ckrOf(err) ?? (err instanceof Error ? err.message.split('\n')[0]! : String(err)).slice(0, 300);
}
