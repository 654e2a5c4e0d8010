/**
 * The private half of the POP: decrypts a compact JWE that a client encrypted to one of a realm's `enc` keys.
 *
 * The JWE's `kid` picks the key; without a `kid` every published `enc` key of the realm is tried. Only the key's
 * own algorithm is accepted for key management (no `alg` confusion, no PBES2 or `dir`), and only the AES-GCM and
 * AES-CBC-HMAC content encryptions. A revoked or expired key decrypts nothing. Failures say what was wrong with the
 * request, never anything about the key or the plaintext.
 */
import { compactDecrypt, decodeProtectedHeader } from 'jose';
import { CONTENT_ENC_ALGS } from '../config/defaults.js';
import { KeymeshError } from '../errors.js';
import type { KeyEntry } from './key-entry.js';
import type { Keyring } from './keyring.js';

const COMPACT_JWE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** What a successful decryption gives back. */
export interface Decrypted {
  readonly plaintext: Uint8Array;
  readonly kid: string;
}

/** Decrypts what clients encrypted to a realm's POP. */
export class PopDecryptor {
  readonly #keyring: Keyring;

  constructor(options: { keyring: Keyring }) {
    this.#keyring = options.keyring;
  }

  /** @throws KeymeshError `ERR_DECRYPT_FAILED` for anything that does not decrypt with a published key. */
  async decrypt(realm: string, jwe: string): Promise<Decrypted> {
    if (!COMPACT_JWE.test(jwe)) throw failed('expected a compact JWE (five base64url parts)');
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(jwe);
    } catch {
      throw failed('the JWE protected header is not valid');
    }
    // RFC 8725 §3.6: compressed plaintext leaks through its length, and inflating is work an attacker chooses
    if (header.zip !== undefined) throw failed('compressed JWEs (zip) are not accepted');
    const candidates =
      header.kid === undefined ? this.#keyring.published(realm, 'enc') : [this.#keyFor(realm, header.kid)];
    if (candidates.length === 0) throw failed('no encryption key is published');
    for (const key of candidates) {
      if (header.alg !== key.alg) continue;
      try {
        const { plaintext } = await compactDecrypt(jwe, await key.privateKey(), {
          keyManagementAlgorithms: [key.alg],
          contentEncryptionAlgorithms: [...CONTENT_ENC_ALGS],
        });
        return { plaintext, kid: key.kid };
      } catch {
        // try the next candidate; the reason is not reported (it would be an oracle)
      }
    }
    throw failed(
      candidates.every((k) => header.alg !== k.alg)
        ? "the JWE's algorithm is not the key's algorithm"
        : 'the JWE could not be decrypted',
    );
  }

  #keyFor(realm: string, kid: string): KeyEntry {
    const key = this.#keyring.get(kid);
    if (!key || key.realm !== realm || key.use !== 'enc') throw failed('unknown key id');
    if (key.revokedAt !== undefined) throw failed('the key was revoked');
    if (!this.#keyring.isPublished(key)) throw failed('the key has expired');
    return key;
  }
}

function failed(why: string): KeymeshError {
  return new KeymeshError('ERR_DECRYPT_FAILED', why);
}
