/** `keymesh audit verify FILE...`: checks the hash chain of audit log files. Exit 0 valid, 1 broken, 2 usage. */
import { verifyAuditFiles } from '../audit/verify.js';

export interface AuditVerifyIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/** Verifies `files` in order and returns the exit code. */
export async function runAuditVerify(files: readonly string[], io: AuditVerifyIo): Promise<number> {
  if (files.length === 0) {
    io.stderr.write('keymesh: usage: keymesh audit verify FILE... (rotated files first, oldest first)\n');
    return 2;
  }
  let result;
  try {
    result = await verifyAuditFiles(files);
  } catch (err) {
    io.stderr.write(
      `keymesh: cannot read ${(err as NodeJS.ErrnoException).path ?? 'the file'}: ${(err as NodeJS.ErrnoException).code ?? 'error'}\n`,
    );
    return 2;
  }
  if (!result.ok) {
    io.stdout.write(`broken: ${result.file}:${result.line}: ${result.reason}\n`);
    return 1;
  }
  const from = result.continues ? ' (continues an earlier file that was not given)' : '';
  io.stdout.write(`ok: ${result.lines} lines, last seq ${result.lastSeq}, head ${result.head}${from}\n`);
  return 0;
}
