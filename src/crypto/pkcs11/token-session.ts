/**
 * A logged-in session with one PKCS#11 token: load the module, initialise it, find the token by label or slot id,
 * open a session and log in as the user. `close()` undoes all of it in reverse and never throws, so every caller
 * closes in `finally`, also when opening failed half-way (opening cleans up what it did before it throws).
 *
 * Every call is synchronous and blocks its thread until the token answers; a bound on the time it takes needs a
 * process that can be killed (`unseal-process.ts`). A process has one session open at a time: the module is
 * initialised when it opens and finalised when it closes (the unseal process and the CLI each open one).
 */
import { KeymeshError } from '../../errors.js';
import {
  ckrOf,
  describePkcs11Error,
  loadPkcs11Binding,
  type Handle,
  type Pkcs11Constants,
  type Pkcs11Library,
} from './binding.js';

/** Which token, through which module. */
export interface TokenSelector {
  /** Path of the PKCS#11 module. */
  readonly module: string;
  /** The token's label (exclusive with `slot`). */
  readonly tokenLabel?: string | undefined;
  /** The id of the slot holding the token (exclusive with `tokenLabel`). */
  readonly slot?: number | undefined;
}

/** The most token labels an error lists. */
const MAX_LISTED_TOKENS = 10;

/** An open, logged-in session. */
export class TokenSession {
  readonly #lib: Pkcs11Library;
  readonly #session: Handle;
  /** The constants of the binding. */
  readonly ck: Pkcs11Constants;
  /** How errors name the token: its label or its slot. */
  readonly tokenName: string;
  #closed = false;

  private constructor(lib: Pkcs11Library, ck: Pkcs11Constants, session: Handle, tokenName: string) {
    this.#lib = lib;
    this.ck = ck;
    this.#session = session;
    this.tokenName = tokenName;
  }

  /**
   * Opens a session on the selected token and logs in with `pin`.
   * @throws KeymeshError `ERR_PKCS11_MODULE` (binding or module not loadable, module failing),
   *   `ERR_PKCS11_TOKEN_NOT_FOUND`, `ERR_PKCS11_PIN`.
   */
  static async open(selector: TokenSelector, pin: string, options: { readWrite: boolean }): Promise<TokenSession> {
    const binding = await loadPkcs11Binding();
    const { ck } = binding;
    const lib = binding.createLibrary();
    try {
      lib.load(selector.module);
    } catch (err) {
      throw new KeymeshError(
        'ERR_PKCS11_MODULE',
        `cannot load the PKCS#11 module ${selector.module}: ${describePkcs11Error(err)}`,
        { cause: err },
      );
    }
    const undo: Array<() => void> = [() => lib.close()];
    try {
      call(() => lib.C_Initialize(), `the PKCS#11 module ${selector.module} failed to initialise`);
      undo.unshift(() => lib.C_Finalize());
      const { slot, tokenName } = findSlot(lib, selector);
      const flags = ck.CKF_SERIAL_SESSION | (options.readWrite ? ck.CKF_RW_SESSION : 0);
      const session = call(() => lib.C_OpenSession(slot, flags), `cannot open a session with ${tokenName}`);
      undo.unshift(() => lib.C_CloseSession(session));
      login(lib, ck, session, pin, tokenName);
      undo.unshift(() => lib.C_Logout(session));
      return new TokenSession(lib, ck, session, tokenName);
    } catch (err) {
      for (const step of undo) attempt(step);
      throw err;
    }
  }

  /** The library, for the operations built on a session (`key-wrap.ts`). */
  get lib(): Pkcs11Library {
    return this.#lib;
  }

  /** The session handle. */
  get handle(): Handle {
    return this.#session;
  }

  /**
   * The handle of the one AES secret key labelled `label`, or undefined when there is none.
   * @throws KeymeshError `ERR_PKCS11_KEY_NOT_FOUND` when more than one key carries the label.
   */
  findAesKey(label: string): Handle | undefined {
    const { ck } = this;
    const lib = this.lib;
    const found = call(() => {
      lib.C_FindObjectsInit(this.#session, [
        { type: ck.CKA_CLASS, value: ck.CKO_SECRET_KEY },
        { type: ck.CKA_KEY_TYPE, value: ck.CKK_AES },
        { type: ck.CKA_LABEL, value: label },
      ]);
      try {
        return lib.C_FindObjects(this.#session, 2);
      } finally {
        lib.C_FindObjectsFinal(this.#session);
      }
    }, `cannot search ${this.tokenName} for keys`);
    if (found.length > 1)
      throw new KeymeshError(
        'ERR_PKCS11_KEY_NOT_FOUND',
        `more than one AES key in ${this.tokenName} is labelled "${label}"; the label must name one key`,
      );
    return found[0];
  }

  /** Logs out, closes the session, finalises and unloads the module. Idempotent; never throws. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    attempt(() => this.#lib.C_Logout(this.#session));
    attempt(() => this.#lib.C_CloseSession(this.#session));
    attempt(() => this.#lib.C_Finalize());
    attempt(() => this.#lib.close());
  }
}

/** Runs `fn` on a session that is closed afterwards, whatever happens. */
export async function withTokenSession<T>(
  selector: TokenSelector,
  pin: string,
  options: { readWrite: boolean },
  fn: (session: TokenSession) => T,
): Promise<T> {
  const session = await TokenSession.open(selector, pin, options);
  try {
    return fn(session);
  } finally {
    session.close();
  }
}

/** Runs a module call; a failure becomes `ERR_PKCS11_MODULE` with `what` and the `CKR_*` name. */
export function call<T>(fn: () => T, what: string): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof KeymeshError) throw err;
    throw new KeymeshError('ERR_PKCS11_MODULE', `${what}: ${describePkcs11Error(err)}`, { cause: err });
  }
}

function attempt(fn: () => void): void {
  try {
    fn();
  } catch {
    // closing what is already closed (or was never opened) is not an error worth more than the one being thrown
  }
}

function slotId(slot: Handle): bigint {
  return slot.length >= 8 ? slot.readBigUInt64LE(0) : BigInt(slot.readUInt32LE(0));
}

function findSlot(lib: Pkcs11Library, selector: TokenSelector): { slot: Handle; tokenName: string } {
  const slots = call(() => lib.C_GetSlotList(true), `the PKCS#11 module ${selector.module} cannot list its slots`);
  if (selector.slot !== undefined) {
    const wanted = BigInt(selector.slot);
    const slot = slots.find((s) => slotId(s) === wanted);
    if (!slot)
      throw new KeymeshError(
        'ERR_PKCS11_TOKEN_NOT_FOUND',
        `no token is present in slot ${selector.slot} of ${selector.module} (slots with a token: ${
          slots
            .slice(0, MAX_LISTED_TOKENS)
            .map((s) => slotId(s).toString())
            .join(', ') || 'none'
        })`,
      );
    return { slot, tokenName: `the token in slot ${selector.slot}` };
  }
  const label = selector.tokenLabel ?? '';
  const labels = slots.map((s) =>
    call(() => lib.C_GetTokenInfo(s), `cannot read the token in slot ${slotId(s)}`).label.trimEnd(),
  );
  const matching = slots.filter((_, i) => labels[i] === label);
  if (matching.length === 0) {
    const present =
      labels
        .filter(Boolean)
        .slice(0, MAX_LISTED_TOKENS)
        .map((l) => `"${l}"`)
        .join(', ') || 'none';
    throw new KeymeshError(
      'ERR_PKCS11_TOKEN_NOT_FOUND',
      `no token labelled "${label}" in ${selector.module} (token labels present: ${present})`,
    );
  }
  if (matching.length > 1)
    throw new KeymeshError(
      'ERR_PKCS11_TOKEN_NOT_FOUND',
      `${matching.length} tokens are labelled "${label}"; give managementKeyPkcs11.slot instead`,
    );
  return { slot: matching[0]!, tokenName: `token "${label}"` };
}

function login(lib: Pkcs11Library, ck: Pkcs11Constants, session: Handle, pin: string, tokenName: string): void {
  try {
    lib.C_Login(session, ck.CKU_USER, pin);
  } catch (err) {
    const ckr = ckrOf(err);
    if (ckr === 'CKR_USER_ALREADY_LOGGED_IN') return;
    if (ckr?.startsWith('CKR_PIN_'))
      throw new KeymeshError(
        'ERR_PKCS11_PIN',
        `${tokenName} refused the PIN (${ckr}); each wrong PIN counts against the token's retry limit`,
        { cause: err },
      );
    throw new KeymeshError('ERR_PKCS11_MODULE', `cannot log in to ${tokenName}: ${describePkcs11Error(err)}`, {
      cause: err,
    });
  }
}
