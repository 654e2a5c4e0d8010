/**
 * The in-memory twin of the file audit log, for unit tests: the same lines (`line.ts`), kept in an array. It can
 * be told to fail, to show what a caller does when its fail-closed line cannot be written.
 */
import { KeymeshError } from '../errors.js';
import type { AuditLog } from './audit-log.js';
import { FAIL_CLOSED_KINDS, type AuditEvent } from './events.js';
import { formatLine, GENESIS_HEAD, type ChainHead } from './line.js';

export class MemoryAuditLog implements AuditLog {
  readonly lines: string[] = [];
  #head: ChainHead = GENESIS_HEAD;
  #dropped = 0;
  /** While true, every write fails: fail-closed events reject, best-effort ones are dropped. */
  failing = false;

  constructor(
    readonly node = 'test-node',
    readonly now: () => number = () => Date.now(),
  ) {}

  get dropped(): number {
    return this.#dropped;
  }

  /** The lines parsed. */
  get events(): Array<Record<string, unknown>> {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async record(event: AuditEvent): Promise<void> {
    if (this.failing) {
      if (FAIL_CLOSED_KINDS.has(event.event))
        throw new KeymeshError('ERR_AUDIT_UNAVAILABLE', 'the audit log cannot be written: the write failed');
      this.#dropped++;
      return;
    }
    const { line, head } = formatLine(this.#head, event, { node: this.node, at: new Date(this.now()) });
    this.lines.push(line);
    this.#head = head;
  }
}
