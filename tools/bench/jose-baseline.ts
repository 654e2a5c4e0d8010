/**
 * The in-process baseline of `/v1/decrypt`: jose `compactDecrypt` of an ECDH-ES+A256KW (P-256) / A256GCM compact
 * JWE with a key pair generated here, called in a loop for a fixed time. The node's private keys never leave the
 * node, so the baseline uses its own key pair of the same kind; the work per operation is the same.
 */
import { CompactEncrypt, compactDecrypt, generateKeyPair, type CryptoKey, type KeyInput } from 'jose';
import { randomBytes } from 'node:crypto';

/** The POP key management and content encryption algorithms used by the benchmark. */
export const JWE_ALG = 'ECDH-ES+A256KW';
export const JWE_ENC = 'A256GCM';

/** A compact JWE of `plaintext` to `publicKey`, with `kid` in the protected header when given. */
export async function encryptTo(publicKey: KeyInput, plaintext: Uint8Array, kid?: string): Promise<string> {
  return new CompactEncrypt(plaintext)
    .setProtectedHeader({ alg: JWE_ALG, enc: JWE_ENC, ...(kid !== undefined && { kid }) })
    .encrypt(publicKey);
}

/** Options of one timed loop. */
export interface DecryptLoop {
  readonly durationMs: number;
  /** How many decryptions are in flight at once: 1 is a plain sequential loop. */
  readonly concurrency: number;
}

/** A JWE and the private key that opens it, made in this process. */
export interface BaselineFixture {
  readonly jwe: string;
  readonly privateKey: CryptoKey;
}

/** Generates a P-256 key pair and a JWE of `plaintextBytes` random bytes to it; checks that it decrypts. */
export async function makeBaselineFixture(plaintextBytes: number): Promise<BaselineFixture> {
  const { publicKey, privateKey } = await generateKeyPair(JWE_ALG, { crv: 'P-256' });
  const plaintext = randomBytes(plaintextBytes);
  const jwe = await encryptTo(publicKey, plaintext, 'bench');
  const opened = await compactDecrypt(jwe, privateKey);
  if (!Buffer.from(opened.plaintext).equals(plaintext))
    throw new Error('in-process baseline: decryption gave another plaintext');
  return { jwe, privateKey };
}

/** Decryptions per second of `fixture.jwe` over `loop.durationMs`. */
export async function decryptOpsPerSecond(fixture: BaselineFixture, loop: DecryptLoop): Promise<number> {
  const options = { keyManagementAlgorithms: [JWE_ALG], contentEncryptionAlgorithms: [JWE_ENC] };
  let done = 0;
  const start = performance.now();
  const end = start + loop.durationMs;
  const worker = async () => {
    while (performance.now() < end) {
      await compactDecrypt(fixture.jwe, fixture.privateKey, options);
      done++;
    }
  };
  await Promise.all(Array.from({ length: loop.concurrency }, worker));
  return done / ((performance.now() - start) / 1000);
}
