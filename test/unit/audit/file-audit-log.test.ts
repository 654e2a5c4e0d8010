/**
 * The file audit writer: the chain across restarts and rotation, and its bounds when the disk hangs or fails or
 * the queue is full (a fake file system), with the fail-closed / best-effort split of the contract.
 */
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditFileSystem, AuditHandle } from '../../../src/audit/audit-file.js';
import { tokenRef, userRef, type AuditEvent } from '../../../src/audit/events.js';
import { FileAuditLog } from '../../../src/audit/file-audit-log.js';
import { GENESIS_PREV, hashLine } from '../../../src/audit/line.js';
import { verifyAuditFiles } from '../../../src/audit/verify.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
const logs: FileAuditLog[] = [];
afterEach(async () => {
  for (const log of logs.splice(0)) await log.stop();
  dirs.cleanup();
});

function open(path: string, extra: Partial<ConstructorParameters<typeof FileAuditLog>[0]> = {}): FileAuditLog {
  const log = new FileAuditLog({ path, node: 'node-1', ...extra });
  logs.push(log);
  return log;
}

const released: AuditEvent = {
  event: 'secret:released',
  realm: 'default',
  client: 'rs-1',
  audiences: ['https://rs-1.example'],
  user: userRef('https://idp', 'alice'),
};
const revoked: AuditEvent = { event: 'token:revoked', realm: 'default', client: 'app', token: tokenRef('jti-1') };

/** A file system whose appends hang or fail while told to. */
function fakeFs(): AuditFileSystem & { lines: string[]; mode: 'ok' | 'hang' | 'fail'; appends: number; syncs: number } {
  const state = {
    lines: [] as string[],
    mode: 'ok' as 'ok' | 'hang' | 'fail',
    appends: 0,
    syncs: 0,
    async openAppend(): Promise<AuditHandle> {
      return {
        append: async (bytes) => {
          state.appends++;
          if (state.mode === 'hang') return new Promise<void>(() => undefined);
          if (state.mode === 'fail') throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
          state.lines.push(...Buffer.from(bytes).toString('utf8').split('\n').filter(Boolean));
        },
        sync: async () => void state.syncs++,
        close: async () => undefined,
      };
    },
    async readTail() {
      const text = state.lines.map((l) => `${l}\n`).join('');
      return { size: Buffer.byteLength(text), tail: Buffer.from(text).subarray(-16_385) };
    },
    async rename() {
      throw new Error('no rename here');
    },
  };
  return state;
}

describe('audit log (file)', () => {
  it('chains every line to the one before and resumes the chain after a restart', async () => {
    const path = join(dirs.make(), 'audit.log');
    const first = open(path);
    await first.start();
    await first.record(released);
    await first.record(revoked);
    await first.stop();
    const second = open(path);
    await second.start();
    await second.record(released);
    await second.stop();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((p) => p['seq'])).toEqual([1, 2, 3]);
    expect(parsed[0]).toMatchObject({
      v: 1,
      node: 'node-1',
      event: 'secret:released',
      client: 'rs-1',
      prev: GENESIS_PREV,
    });
    expect(parsed[2]!['prev']).toBe(hashLine(lines[1]!));
    expect(Object.keys(parsed[0]!)).toEqual([
      'v',
      'seq',
      'at',
      'node',
      'event',
      'realm',
      'client',
      'audiences',
      'user',
      'prev',
    ]);
    await expect(verifyAuditFiles([path])).resolves.toMatchObject({ ok: true, lines: 3, lastSeq: 3 });
  });

  it('syncs a fail-closed line before it answers, and does not wait for a best-effort one', async () => {
    const fs = fakeFs();
    const log = open('/audit.log', { fs });
    await log.start();
    await log.record(revoked);
    await expect.poll(() => fs.lines.length).toBe(1);
    expect(fs.syncs).toBe(0);
    await log.record(released);
    expect(fs.lines).toHaveLength(2);
    expect(fs.syncs).toBe(1);
  });

  it('refuses a fail-closed event within the write timeout when the disk write hangs, and never writes one still queued', async () => {
    const fs = fakeFs();
    const log = open('/audit.log', { fs, writeTimeoutMs: 100 });
    await log.start();
    fs.mode = 'hang';
    const started = performance.now();
    const hung = log.record(released);
    const queued = log.record(released);
    await expect(hung).rejects.toMatchObject({ code: 'ERR_AUDIT_UNAVAILABLE' });
    await expect(queued).rejects.toMatchObject({ code: 'ERR_AUDIT_UNAVAILABLE' });
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(fs.appends).toBe(1);
  });

  it('refuses a fail-closed event when the write fails, drops a best-effort one, and writes again once the disk is back', async () => {
    const fs = fakeFs();
    const log = open('/audit.log', { fs });
    await log.start();
    await log.record(released);
    fs.mode = 'fail';
    await expect(log.record(released)).rejects.toMatchObject({ code: 'ERR_AUDIT_UNAVAILABLE' });
    await log.record(revoked);
    await expect.poll(() => log.dropped).toBe(1);
    fs.mode = 'ok';
    await log.record(released);
    expect(fs.lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual([1, 2]);
  });

  it('refuses fail-closed events and counts best-effort ones as dropped when the queue is full', async () => {
    const fs = fakeFs();
    const log = open('/audit.log', { fs, queueMax: 2, writeTimeoutMs: 100 });
    await log.start();
    fs.mode = 'hang';
    void log.record(revoked); // taken by the writer, which hangs
    await expect.poll(() => fs.appends).toBe(1);
    await log.record(revoked);
    await log.record(revoked);
    await log.record(revoked);
    expect(log.dropped).toBe(1);
    await expect(log.record(released)).rejects.toMatchObject({
      code: 'ERR_AUDIT_UNAVAILABLE',
      message: expect.stringContaining('queue is full'),
    });
  });

  it('does not append to a file whose last line is incomplete, and says so without naming the file to callers', async () => {
    const path = join(dirs.make(), 'audit.log');
    const first = open(path);
    await first.start();
    await first.record(released);
    await first.stop();
    appendFileSync(path, '{"v":1,"seq":2');
    const second = open(path);
    await second.start();
    expect(second.broken).toContain('incomplete');
    const err = await second.record(released).catch((e: Error) => e);
    expect(err).toMatchObject({ code: 'ERR_AUDIT_UNAVAILABLE' });
    expect((err as Error).message).not.toContain(path);
  });

  it('writes the best-effort events still queued when it stops', async () => {
    const path = join(dirs.make(), 'audit.log');
    const log = open(path);
    await log.start();
    for (let i = 0; i < 50; i++) void log.record(revoked);
    await log.stop();
    expect(readFileSync(path, 'utf8').trimEnd().split('\n')).toHaveLength(50);
    expect(log.dropped).toBe(0);
  });

  it('rotates by size and continues the chain in the next file', async () => {
    const dir = dirs.make();
    const path = join(dir, 'audit.log');
    const log = open(path, { maxFileBytes: 700 });
    await log.start();
    for (let i = 0; i < 6; i++) await log.record(released);
    await log.stop();
    const rotated = readdirSync(dir)
      .filter((f) => f !== 'audit.log')
      .sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
    expect(rotated.length).toBeGreaterThan(0);
    const current = readFileSync(path, 'utf8').split('\n')[0]!;
    expect(JSON.parse(current)).toMatchObject({ event: 'audit:rotated', previousFile: rotated.at(-1) });
    await expect(verifyAuditFiles([...rotated.map((f) => join(dir, f)), path])).resolves.toMatchObject({
      ok: true,
      continues: false,
    });
    await expect(verifyAuditFiles([path])).resolves.toMatchObject({ ok: true, continues: true });
  });

  it('refuses fail-closed events and drops best-effort ones when the file cannot be created', async () => {
    const path = join(dirs.make(), 'missing-dir', 'audit.log');
    const log = open(path, { writeTimeoutMs: 200 });
    await log.start();
    await log.record(revoked);
    await expect(log.record(released)).rejects.toMatchObject({ code: 'ERR_AUDIT_UNAVAILABLE' });
    await expect.poll(() => log.dropped).toBe(1);
  });
});
