/** Reading a small file whole, refusing it when it is larger than expected, so no file can make a node read much. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

/** Why a file was not read: an error code (`ENOENT`, `EACCES`, `EISDIR`, …), or its size. */
export type FileProblem = { readonly kind: 'unreadable'; readonly code: string } | { readonly kind: 'too-large' };

/**
 * Reads `path` whole if it is a regular file of at most `maxBytes` bytes.
 * @throws the error `fail` makes of the problem.
 */
export function readBoundedFile(
  path: string,
  maxBytes: number,
  fail: (problem: FileProblem, cause?: unknown) => Error,
): Buffer {
  let fd: number | undefined;
  let tooLarge = false;
  try {
    fd = openSync(path, 'r');
    const stat = fstatSync(fd);
    if (!stat.isFile())
      throw Object.assign(new Error('not a regular file'), {
        code: stat.isDirectory() ? 'EISDIR' : 'not a regular file',
      });
    tooLarge = stat.size > maxBytes;
    if (!tooLarge) {
      const buf = Buffer.alloc(stat.size);
      return buf.subarray(0, readSync(fd, buf, 0, stat.size, 0));
    }
  } catch (err) {
    throw fail({ kind: 'unreadable', code: (err as NodeJS.ErrnoException).code ?? 'error' }, err);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  throw fail({ kind: 'too-large' });
}
