/**
 * Checking an audit chain (`keymesh audit verify`): every line parses, `seq` counts up by one, and each line's
 * `prev` is the hash of the line before it (the first line of a log: the genesis value; the first line of a file
 * made by rotation, `audit:rotated`: the previous file's last line, checked when that file is given too).
 *
 * The first bad line is the first line the chain no longer vouches for: a changed line is reported itself (its hash
 * no longer matches the next line's `prev`), a removed line at the line after the gap, two swapped lines at the
 * first of them, a cut last line at itself. A change to the very last line cannot be seen from the file alone:
 * compare the head hash printed on success with one recorded elsewhere.
 */
import { createReadStream } from 'node:fs';
import { GENESIS_PREV, hashLine, parseLine } from './line.js';

export type VerifyResult =
  | {
      readonly ok: true;
      readonly lines: number;
      readonly lastSeq: number;
      readonly head: string;
      readonly continues: boolean;
    }
  | { readonly ok: false; readonly file: string; readonly line: number; readonly reason: string };

/** Feeds lines of one or more files, in order, through the chain check. */
export class ChainVerifier {
  #file = '';
  #lineNo = 0;
  #lines = 0;
  #previous: { seq: number; hash: string; line: number; file: string } | undefined;
  #continues = false;
  #failure: Extract<VerifyResult, { ok: false }> | undefined;

  /** Starts the next file. */
  file(name: string): void {
    this.#file = name;
    this.#lineNo = 0;
  }

  /** Checks one complete line (without its newline); false once the chain is broken. */
  line(text: string): boolean {
    if (this.#failure) return false;
    this.#lineNo++;
    this.#lines++;
    const parsed = parseLine(text);
    if (typeof parsed === 'string') return this.#fail(this.#lineNo, parsed);
    const before = this.#previous;
    if (before === undefined) {
      if (parsed.event === 'audit:rotated') this.#continues = true;
      else if (parsed.prev !== GENESIS_PREV || parsed.seq !== 1)
        return this.#fail(this.#lineNo, 'the first line of a log must have seq 1 and the genesis prev');
    } else {
      if (parsed.seq !== before.seq + 1) {
        const why =
          parsed.seq > before.seq + 1
            ? `seq jumps from ${before.seq} to ${parsed.seq}: a line is missing before this one`
            : `seq ${parsed.seq} follows ${before.seq}: lines were reordered or repeated`;
        return this.#fail(this.#lineNo, why);
      }
      if (parsed.prev !== before.hash) {
        // the line before no longer hashes to what this one recorded: that line was changed (or this one's prev)
        if (before.file !== this.#file)
          return this.#fail(this.#lineNo, `prev does not match the last line of ${before.file}`);
        return this.#fail(
          before.line,
          `the line does not hash to the prev recorded by line ${this.#lineNo}: it was changed`,
        );
      }
    }
    this.#previous = { seq: parsed.seq, hash: hashLine(text), line: this.#lineNo, file: this.#file };
    return true;
  }

  /** Ends the current file; `rest` is what followed its last newline (a cut line when not empty). */
  endFile(rest: string): void {
    if (rest.length > 0 && !this.#failure) this.#fail(this.#lineNo + 1, 'the line is incomplete (the file was cut)');
  }

  result(): VerifyResult {
    if (this.#failure) return this.#failure;
    return {
      ok: true,
      lines: this.#lines,
      lastSeq: this.#previous?.seq ?? 0,
      head: this.#previous?.hash ?? GENESIS_PREV,
      continues: this.#continues,
    };
  }

  #fail(line: number, reason: string): false {
    this.#failure = { ok: false, file: this.#file, line, reason };
    return false;
  }
}

/**
 * Verifies the files (in order: a rotated file before the one that continues it) by streaming them.
 * @throws the read error when a file cannot be read.
 */
export async function verifyAuditFiles(files: readonly string[]): Promise<VerifyResult> {
  const verifier = new ChainVerifier();
  for (const file of files) {
    verifier.file(file);
    let rest = Buffer.alloc(0);
    for await (const chunk of createReadStream(file)) {
      let data = Buffer.concat([rest, chunk as Buffer]);
      for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a)) {
        if (!verifier.line(data.subarray(0, nl).toString('utf8'))) return verifier.result();
        data = data.subarray(nl + 1);
      }
      rest = data;
      // a line longer than any audit line is reported without holding it all in memory
      if (rest.byteLength > 1 << 20) {
        verifier.line(rest.toString('utf8'));
        return verifier.result();
      }
    }
    verifier.endFile(rest.toString('utf8'));
  }
  return verifier.result();
}
