import { copyFileSync, mkdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { readTlsPair, type TlsFiles, type TlsPair } from '../../../src/http/tls-pair.js';
import { TlsReloader } from '../../../src/http/tls-reloader.js';
import { createLogger, silentLogger } from '../../../src/log.js';
import { TempDirs } from '../../helpers/temp-dir.js';
import { selfSignedCert } from '../../helpers/tls.js';
import { waitFor } from '../../helpers/wait-for.js';

const dirs = new TempDirs();
const reloaders: TlsReloader[] = [];
afterEach(async () => {
  for (const r of reloaders.splice(0)) await r.stop();
  dirs.cleanup();
});

function pair(): TlsFiles {
  const dir = join(dirs.make(), 'pair');
  mkdirSync(dir);
  return selfSignedCert(dir);
}

/** A reloader over the files of a served pair, recording what it applies and logs. */
function setup(options: { watch?: boolean; now?: () => number } = {}) {
  const served = pair();
  const applied: TlsPair[] = [];
  const reported: string[] = [];
  const lines: Array<Record<string, unknown>> = [];
  const out = new PassThrough();
  out.on('data', (chunk: Buffer) => {
    for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  const now = options.now ?? (() => Date.now());
  const reloader = new TlsReloader({
    files: served,
    current: readTlsPair(served, now()),
    apply: (p) => void applied.push(p),
    log: createLogger({ level: 'info', destination: out, readable: false }),
    now,
    watch: options.watch ?? false,
    debounceMs: 50,
    onReload: (outcome) => void reported.push(outcome),
  });
  reloaders.push(reloader);
  /** Puts another pair's files in place of the served ones, by rename, as deployment tools do. */
  const replaceWith = (next: TlsFiles, which: 'both' | 'cert' | 'key' = 'both') => {
    if (which !== 'key')
      copyFileSync(next.certFile, `${served.certFile}.new`), renameSync(`${served.certFile}.new`, served.certFile);
    if (which !== 'cert')
      copyFileSync(next.keyFile, `${served.keyFile}.new`), renameSync(`${served.keyFile}.new`, served.keyFile);
  };
  return { reloader, applied, reported, lines, replaceWith, served };
}

describe('TLS reloader', () => {
  it('applies a new good pair, and nothing when the files are unchanged', () => {
    const { reloader, applied, reported, lines, replaceWith } = setup();
    const before = reloader.fingerprint256;
    expect(reloader.reload('signal')).toBe('unchanged');
    expect(applied).toEqual([]);
    const next = pair();
    replaceWith(next);
    expect(reloader.reload('signal')).toBe('reloaded');
    expect(applied.map((p) => p.fingerprint256)).toEqual([readTlsPair(next, Date.now()).fingerprint256]);
    expect(reloader.fingerprint256).not.toBe(before);
    expect(lines.find((l) => l.msg === 'TLS certificate and key reloaded')).toMatchObject({
      reason: 'signal',
      previous: before,
      fingerprint256: reloader.fingerprint256,
    });
    // counted (keymesh_tls_reloads_total): the reload that applied, not the one that found the served pair
    expect(reported).toEqual(['reloaded']);
  });

  it('refuses a mismatched pair and an expired one, keeps serving the last good pair and logs why', () => {
    let now = Date.now();
    const { reloader, applied, reported, lines, replaceWith } = setup({ now: () => now });
    const before = reloader.fingerprint256;
    replaceWith(pair(), 'cert');
    expect(reloader.reload('signal')).toBe('refused');
    expect(applied).toEqual([]);
    expect(reloader.fingerprint256).toBe(before);
    const refusal = lines.find((l) => l.level === 50);
    expect(refusal).toMatchObject({
      msg: 'refused the new TLS certificate and key; still serving the previous pair',
      reason: 'signal',
      path: 'http.tls.keyFile',
      serving: before,
    });
    expect(String(refusal?.problem)).toMatch(/is not the key of the certificate/);
    // a good pair that has expired by the node's clock is refused the same way
    replaceWith(pair());
    now += 3 * 24 * 60 * 60 * 1000;
    expect(reloader.reload('signal')).toBe('refused');
    expect(lines.at(-1)).toMatchObject({ path: 'http.tls.certFile', level: 50 });
    expect(String(lines.at(-1)?.problem)).toMatch(/expired at/);
    expect(applied).toEqual([]);
    expect(reported).toEqual(['refused', 'refused']);
  });

  it('reloads on its own when the files change, once for a certificate and key written one after the other', async () => {
    const { reloader, applied, lines, replaceWith } = setup({ watch: true });
    await reloader.start();
    const next = pair();
    replaceWith(next, 'cert');
    replaceWith(next, 'key');
    await waitFor(() => applied.length === 1, {
      timeoutMs: 5_000,
      message: 'the new pair applied after the file change',
    });
    expect(applied[0]!.fingerprint256).toBe(readTlsPair(next, Date.now()).fingerprint256);
    expect(lines.filter((l) => l.msg === 'TLS certificate and key reloaded').map((l) => l.reason)).toEqual([
      'file change',
    ]);
    expect(lines.filter((l) => l.level === 50)).toEqual([]);
  });

  it('stops watching on stop, and stop is safe before start and twice', async () => {
    const { reloader, applied, replaceWith, served } = setup({ watch: true });
    await reloader.stop();
    await reloader.start();
    await reloader.stop();
    await reloader.stop();
    // a second reloader on the same files sees the change; by the time it applied it, a watcher of the first would have too
    const witness: TlsPair[] = [];
    const second = new TlsReloader({
      files: served,
      current: readTlsPair(served, Date.now()),
      apply: (p) => void witness.push(p),
      log: silentLogger(),
      now: () => Date.now(),
      debounceMs: 50,
    });
    reloaders.push(second);
    await second.start();
    replaceWith(pair());
    await waitFor(() => witness.length === 1, { timeoutMs: 5_000, message: 'the second reloader applied the change' });
    expect(applied).toEqual([]);
  });
});
