// The slow-hash pool's worker (see slow-hash.ts): one scrypt per task, synchronous inside this thread, so it
// never occupies the libuv pool that LevelDB and WebCrypto share. Plain JavaScript so that the same file loads
// from src/ (tests) and dist/ (the built node).
import { scryptSync } from 'node:crypto';

/** @param {{ secret: string; salt: Uint8Array; N: number; r: number; p: number; keylen: number }} task */
export default function scryptTask(task) {
  const out = scryptSync(task.secret, task.salt, task.keylen, { N: task.N, r: task.r, p: task.p, maxmem: 256 * task.N * task.r });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
