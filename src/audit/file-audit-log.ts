/**
 * The audit log in a file: append-only JSON lines (`line.ts`), one writer, lines in `record` order.
 *
 * Writes are serialized: queued events are taken in batches, formatted against the chain head, appended with one
 * write, and synced (fsync) when the batch holds a fail-closed event, before any of its callers is answered. On
 * start and after any failed write the file is (re)opened and the chain resumed from its last line, read from the
 * file's end (at most one line's worth of bytes). A file whose last line is incomplete or not an audit line (a
 * crash mid-write, an edit) is not appended to: every fail-closed event is refused until an operator moves it
 * aside (`keymesh audit verify` says where it breaks); the next file starts a new chain.
 *
 * Memory is bounded: at most `queueMax` events wait. When the queue is full a fail-closed event is refused at once
 * and a best-effort one is dropped and counted. A fail-closed event waits at most `writeTimeoutMs`; one still
 * queued by then is taken out and never written. A disk write that hangs holds the writer: later events wait
 * behind it and meet the same bounds.
 *
 * Growth: one line per event (about 300 bytes). With `maxFileBytes` set, a file that would grow past it is
 * renamed `<file>.<seq of its last line>` and the chain continues in a new file whose first line,
 * `audit:rotated`, names the old file and carries its last line's hash as `prev`. Old files are never removed here.
 */
import { basename } from 'node:path';
import { systemClock, type Clock } from '../clock.js';
import { DEFAULT_AUDIT_WRITE_TIMEOUT_MS } from '../config/defaults.js';
import { KeymeshError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Startable } from '../startable.js';
import { nodeAuditFileSystem, type AuditFileSystem, type AuditHandle } from './audit-file.js';
import type { AuditLog } from './audit-log.js';
import { FAIL_CLOSED_KINDS, type AuditEvent } from './events.js';
import { formatLine, GENESIS_HEAD, headOf, MAX_AUDIT_LINE_BYTES, type ChainHead } from './line.js';

/** Most events waiting to be written. Default is 1024. */
export const AUDIT_QUEUE_MAX = 1_024;
/** Most events written in one append. Default is 256. */
export const AUDIT_BATCH_MAX = 256;

export interface FileAuditLogOptions {
  readonly path: string;
  /** The node id every line carries. */
  readonly node: string;
  readonly fs?: AuditFileSystem;
  /** The wall clock of `at`. */
  readonly clock?: Clock;
  /** Longest a fail-closed event waits for its line (ms). Default is `DEFAULT_AUDIT_WRITE_TIMEOUT_MS` (2 s). */
  readonly writeTimeoutMs?: number;
  /** Default is `AUDIT_QUEUE_MAX`. */
  readonly queueMax?: number;
  /** Rotate before a file grows past this many bytes; 0 never rotates. */
  readonly maxFileBytes?: number;
  readonly log?: Logger;
}

interface Entry {
  readonly event: AuditEvent;
  readonly failClosed: boolean;
  state: 'queued' | 'writing' | 'done';
  settle(err?: KeymeshError): void;
}

export class FileAuditLog implements AuditLog, Startable {
  readonly #o: FileAuditLogOptions;
  readonly #fs: AuditFileSystem;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #queueMax: number;
  #queue: Entry[] = [];
  #writing = false;
  /** Settles when the writer has written everything queued (and is idle). */
  #drained: Promise<void> = Promise.resolve();
  #handle: AuditHandle | undefined;
  #head: ChainHead | undefined;
  #size = 0;
  #dropped = 0;
  #broken: string | undefined;

  constructor(options: FileAuditLogOptions) {
    this.#o = options;
    this.#fs = options.fs ?? nodeAuditFileSystem;
    this.#clock = options.clock ?? systemClock;
    this.#timeoutMs = options.writeTimeoutMs ?? DEFAULT_AUDIT_WRITE_TIMEOUT_MS;
    this.#queueMax = options.queueMax ?? AUDIT_QUEUE_MAX;
  }

  get dropped(): number {
    return this.#dropped;
  }

  /** Why the file cannot be appended to right now, if it cannot. */
  get broken(): string | undefined {
    return this.#broken;
  }

  /** Opens the file and resumes its chain; a failure is logged, never thrown (JWKS and POP must still be served). */
  async start(): Promise<void> {
    try {
      await this.#open();
    } catch (err) {
      this.#o.log?.error(
        { err, file: this.#o.path },
        'audit log unavailable: fail-closed events are refused until it can be written',
      );
    }
  }

  /** Writes what is queued (for at most the write timeout), then closes the file; what is left is refused or dropped. Idempotent. */
  async stop(): Promise<void> {
    if (this.#writing) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.#drained,
        new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#timeoutMs))),
      ]);
      clearTimeout(timer);
    }
    for (const entry of this.#queue.splice(0)) this.#fail(entry, 'the node is stopping');
    const handle = this.#handle;
    this.#handle = undefined;
    await handle?.close().catch(() => undefined);
  }

  record(event: AuditEvent): Promise<void> {
    const failClosed = FAIL_CLOSED_KINDS.has(event.event);
    if (this.#queue.length >= this.#queueMax) {
      if (failClosed) return Promise.reject(unavailable('the audit queue is full'));
      this.#dropped++;
      return Promise.resolve();
    }
    if (!failClosed) {
      this.#queue.push({ event, failClosed, state: 'queued', settle: () => undefined });
      this.#kick();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (entry.state === 'queued') this.#queue = this.#queue.filter((e) => e !== entry);
        entry.settle(unavailable(`the audit line was not written within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      timer.unref();
      let settled = false;
      const entry: Entry = {
        event,
        failClosed,
        state: 'queued',
        settle: (err) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          if (err) reject(err);
          else resolve();
        },
      };
      this.#queue.push(entry);
      this.#kick();
    });
  }

  #fail(entry: Entry, why: string): void {
    entry.state = 'done';
    if (entry.failClosed) entry.settle(unavailable(why));
    else this.#dropped++;
  }

  #kick(): void {
    if (this.#writing) return;
    this.#writing = true;
    this.#drained = this.#drain().finally(() => {
      this.#writing = false;
      if (this.#queue.length > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, AUDIT_BATCH_MAX);
      for (const entry of batch) entry.state = 'writing';
      try {
        await this.#write(batch);
        for (const entry of batch) {
          entry.state = 'done';
          entry.settle();
        }
      } catch (err) {
        // the reason (it may name the file) goes to the node log only; callers learn that the write failed
        this.#o.log?.error({ err, file: this.#o.path, broken: this.#broken }, 'audit write failed');
        for (const entry of batch)
          this.#fail(entry, this.#broken === undefined ? 'the write failed' : 'the file is broken');
        // the file's end is unknown now: reopen and read it again before the next line
        const handle = this.#handle;
        this.#handle = undefined;
        this.#head = undefined;
        await handle?.close().catch(() => undefined);
      }
    }
  }

  async #write(batch: readonly Entry[]): Promise<void> {
    if (!this.#handle || !this.#head) await this.#open();
    const at = new Date(this.#clock.now());
    let head = this.#head!;
    let lines = '';
    const format = (event: AuditEvent) => {
      const next = formatLine(head, event, { node: this.#o.node, at });
      head = next.head;
      lines += `${next.line}\n`;
    };
    for (const entry of batch) format(entry.event);
    let bytes = Buffer.from(lines, 'utf8');
    const max = this.#o.maxFileBytes ?? 0;
    if (max > 0 && this.#size > 0 && this.#size + bytes.byteLength > max) {
      await this.#rotate();
      head = this.#head!;
      lines = '';
      format({ event: 'audit:rotated', previousFile: basename(this.#rotatedName(this.#head!.seq)) });
      for (const entry of batch) format(entry.event);
      bytes = Buffer.from(lines, 'utf8');
    }
    await this.#handle!.append(bytes);
    if (batch.some((e) => e.failClosed)) await this.#handle!.sync();
    this.#head = head;
    this.#size += bytes.byteLength;
  }

  #rotatedName(seq: number): string {
    return `${this.#o.path}.${seq}`;
  }

  async #rotate(): Promise<void> {
    await this.#handle!.sync();
    await this.#handle!.close();
    this.#handle = undefined;
    await this.#fs.rename(this.#o.path, this.#rotatedName(this.#head!.seq));
    this.#handle = await this.#fs.openAppend(this.#o.path);
    this.#size = 0;
  }

  /** Opens the file and reads the chain head from its last line. */
  async #open(): Promise<void> {
    const { size, tail } = await this.#fs.readTail(this.#o.path, MAX_AUDIT_LINE_BYTES + 1);
    let head = GENESIS_HEAD;
    if (size > 0) {
      if (tail[tail.byteLength - 1] !== 0x0a) throw this.#brokenFile('its last line is incomplete');
      const body = tail.subarray(0, tail.byteLength - 1);
      const start = body.lastIndexOf(0x0a);
      if (start < 0 && tail.byteLength < size)
        throw this.#brokenFile('its last line is longer than an audit line may be');
      try {
        head = headOf(body.subarray(start + 1).toString('utf8'));
      } catch (err) {
        throw this.#brokenFile(`its last line is not an audit line (${(err as Error).message})`);
      }
    }
    const handle = await this.#fs.openAppend(this.#o.path);
    await this.#handle?.close().catch(() => undefined);
    this.#handle = handle;
    this.#head = head;
    this.#size = size;
    this.#broken = undefined;
  }

  #brokenFile(why: string): KeymeshError {
    this.#broken = `${this.#o.path}: ${why}; move it aside to start a new chain`;
    return unavailable('the file is broken');
  }
}

function unavailable(why: string): KeymeshError {
  return new KeymeshError('ERR_AUDIT_UNAVAILABLE', `the audit log cannot be written: ${why}`);
}
