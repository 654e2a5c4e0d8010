/**
 * `keymesh audit verify`: a valid log passes; one changed byte, a removed line, two swapped lines and a cut last
 * line are each found at the right line.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tokenRef, userRef } from '../../../src/audit/events.js';
import { MemoryAuditLog } from '../../../src/audit/memory-audit-log.js';
import { runAuditVerify } from '../../../src/cli/audit.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

async function logFile(lines = 6): Promise<{ path: string; lines: string[] }> {
  const log = new MemoryAuditLog('node-1');
  for (let i = 0; i < lines; i++) {
    await log.record(
      i % 2 === 0
        ? {
            event: 'secret:released',
            realm: 'default',
            client: `rs-${i}`,
            audiences: ['https://rs.example'],
            user: userRef('https://idp', `user-${i}`),
          }
        : {
            event: 'token:issued',
            realm: 'default',
            client: `app-${i}`,
            grant: 'client_credentials',
            tokenType: 'at',
            audiences: ['a'],
            token: tokenRef(`jti-${i}`),
            expiresAt: 1,
          },
    );
  }
  const path = join(dirs.make(), 'audit.log');
  writeFileSync(path, log.lines.map((l) => `${l}\n`).join(''));
  return { path, lines: [...log.lines] };
}

async function verify(...files: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runAuditVerify(files, {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
  });
  return { code, out, err };
}

describe('keymesh audit verify', () => {
  it('passes a valid log and prints its head', async () => {
    const { path } = await logFile();
    const result = await verify(path);
    expect(result).toMatchObject({
      code: 0,
      out: expect.stringMatching(/^ok: 6 lines, last seq 6, head [0-9a-f]{64}\n$/),
    });
  });

  it('finds one changed byte in a middle line at that line', async () => {
    const { path } = await logFile();
    const text = readFileSync(path, 'utf8');
    const lines = text.split('\n');
    lines[2] = lines[2]!.replace('rs-2', 'rs-7'); // still valid JSON: only the chain shows it
    writeFileSync(path, lines.join('\n'));
    expect(await verify(path)).toMatchObject({
      code: 1,
      out: expect.stringMatching(/:3: the line does not hash to the prev recorded by line 4/),
    });
  });

  it('finds a byte that breaks the JSON at that line', async () => {
    const { path } = await logFile();
    const bytes = readFileSync(path);
    const offset = bytes.indexOf('\n', bytes.indexOf('\n') + 1) + 1; // the start of line 3
    bytes[offset] = 0x5b;
    writeFileSync(path, bytes);
    expect(await verify(path)).toMatchObject({ code: 1, out: expect.stringMatching(/:3: not/) });
  });

  it('finds a removed line at the line after the gap', async () => {
    const { path, lines } = await logFile();
    writeFileSync(path, [...lines.slice(0, 3), ...lines.slice(4)].map((l) => `${l}\n`).join(''));
    expect(await verify(path)).toMatchObject({ code: 1, out: expect.stringMatching(/:4: seq jumps from 3 to 5/) });
  });

  it('finds two swapped lines at the first of them', async () => {
    const { path, lines } = await logFile();
    writeFileSync(path, [lines[0], lines[1], lines[3], lines[2], lines[4], lines[5]].map((l) => `${l}\n`).join(''));
    expect(await verify(path)).toMatchObject({ code: 1, out: expect.stringMatching(/:3: seq jumps from 2 to 4/) });
  });

  it('finds a cut last line', async () => {
    const { path } = await logFile();
    const text = readFileSync(path, 'utf8');
    writeFileSync(path, text.slice(0, text.length - 20));
    expect(await verify(path)).toMatchObject({ code: 1, out: expect.stringMatching(/:6: the line is incomplete/) });
  });

  it('finds a removed first line', async () => {
    const { path, lines } = await logFile();
    writeFileSync(
      path,
      lines
        .slice(1)
        .map((l) => `${l}\n`)
        .join(''),
    );
    expect(await verify(path)).toMatchObject({
      code: 1,
      out: expect.stringMatching(/:1: the first line of a log must have seq 1/),
    });
  });

  it('exits 2 without a file or with one it cannot read', async () => {
    expect(await verify()).toMatchObject({ code: 2, err: expect.stringContaining('usage') });
    expect(await verify(join(dirs.make(), 'nope.log'))).toMatchObject({
      code: 2,
      err: expect.stringContaining('ENOENT'),
    });
  });
});
