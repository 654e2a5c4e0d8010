/**
 * The chaos run can fail: with replication broken on purpose (every register operation on one replica only), a
 * short run must find two secrets for one user (I1) and exit 1, with the violation in its report.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { TempDirs } from '../helpers/temp-dir.js';

const CHAOS = resolve(import.meta.dirname, '../../dist/tools/chaos/main.js');
const dirs = new TempDirs();
afterEach(() => dirs.cleanup());

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CHAOS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => done({ code, out }));
  });
}

describe('npm run chaos', () => {
  it('fails a short run when replication is broken on purpose', async () => {
    const results = dirs.make();
    const { code, out } = await run([
      '--nodes',
      '3',
      '--duration',
      '12',
      '--faults',
      'none',
      '--seed',
      '7',
      '--clients',
      '4',
      '--results',
      results,
      '--break-replication',
    ]);
    // a failed run keeps its data directories and logs for a look, and says where: this one is removed here
    const kept = /data directories and logs kept in (\S+)/.exec(out)?.[1];
    if (kept?.includes('keymesh-chaos-')) rmSync(kept, { recursive: true, force: true });
    expect(out).toMatch(/VIOLATION I1: /);
    expect(code).toBe(1);
    expect(kept).toBeDefined();
    const [folder] = readdirSync(results);
    const report = readFileSync(join(results, folder!, 'report.md'), 'utf8');
    expect(report).toMatch(/^# Chaos run, seed 7: FAIL/);
    expect(report).toMatch(/\| I1 \|/);
  }, 120_000);

  it('refuses bad options with a clear message and exit code 2', async () => {
    const { code, out } = await run(['--faults', 'kill,meteor', '--results', dirs.make()]);
    expect(code).toBe(2);
    expect(out).toMatch(/unknown fault meteor; choose from kill, restart, pause, partition, skew, commit-kill, wipe/);
  });

  it('refuses packet-cut faults without --net netns (exit 2), never running them some other way', async () => {
    const { code, out } = await run(['--faults', 'kill,oneway', '--results', dirs.make()]);
    expect(code).toBe(2);
    expect(out).toMatch(/--faults oneway cut packets with iptables between network namespaces and need --net netns/);
  });
});
