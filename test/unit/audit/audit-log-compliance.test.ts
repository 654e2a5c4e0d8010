/**
 * One suite, run against every AuditLog implementation (the file writer and its in-memory twin): lines in record
 * order, chained from the genesis value, each with only its kind's typed fields.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditLog } from '../../../src/audit/audit-log.js';
import { tokenRef, userRef, type AuditEvent } from '../../../src/audit/events.js';
import { FileAuditLog } from '../../../src/audit/file-audit-log.js';
import { MemoryAuditLog } from '../../../src/audit/memory-audit-log.js';
import { ChainVerifier } from '../../../src/audit/verify.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

interface Subject {
  readonly log: AuditLog;
  /** Everything written, once the log is done. */
  lines(): Promise<string[]>;
}

const implementations: Record<string, () => Promise<Subject>> = {
  file: async () => {
    const path = join(dirs.make(), 'audit.log');
    const log = new FileAuditLog({ path, node: 'node-1' });
    await log.start();
    return { log, lines: async () => (await log.stop(), readFileSync(path, 'utf8').split('\n').filter(Boolean)) };
  },
  memory: async () => {
    const log = new MemoryAuditLog('node-1');
    return { log, lines: async () => log.lines };
  },
};

const events: AuditEvent[] = [
  {
    event: 'secret:released',
    realm: 'default',
    client: 'rs-1',
    audiences: ['https://rs.example'],
    user: userRef('https://idp', 'alice'),
  },
  {
    event: 'token:issued',
    realm: 'default',
    client: 'app',
    grant: 'client_credentials',
    tokenType: 'at',
    audiences: ['a'],
    token: tokenRef('j1'),
    expiresAt: 10,
  },
  { event: 'key:revoke', operator: 'alice', kid: 'kid-1' },
  { event: 'client:throttled', address: '192.0.2.1' },
];

for (const [name, make] of Object.entries(implementations)) {
  describe(`AuditLog compliance: ${name}`, () => {
    it('writes lines in record order, chained from the genesis value', async () => {
      const subject = await make();
      for (const event of events) await subject.log.record(event);
      const lines = await subject.lines();
      expect(lines.map((l) => (JSON.parse(l) as { event: string }).event)).toEqual(events.map((e) => e.event));
      const verifier = new ChainVerifier();
      verifier.file(name);
      for (const line of lines) verifier.line(line);
      expect(verifier.result()).toMatchObject({ ok: true, lines: 4, lastSeq: 4 });
    });

    it('writes only the typed fields of each kind', async () => {
      const subject = await make();
      await subject.log.record({
        ...events[2]!,
        token: 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
        secret: 's3cr3t',
      } as unknown as AuditEvent);
      const [line] = await subject.lines();
      expect(Object.keys(JSON.parse(line!) as object)).toEqual([
        'v',
        'seq',
        'at',
        'node',
        'event',
        'operator',
        'kid',
        'prev',
      ]);
      expect(subject.log.dropped).toBe(0);
    });
  });
}
