/**
 * The outputs helpers (tools/bench/outputs.ts) with the repository root pointed at a temporary directory: the raw
 * JSON file's name, and `writePart` adding one part under its name and writing its summary.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { rawFilePath, writePart } from '../../../tools/bench/outputs.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const where = vi.hoisted(() => ({ root: '' }));
vi.mock('../../../tools/bench/node-settings.js', () => ({
  get ROOT() {
    return where.root;
  },
}));

const temp = new TempDirs();
let printed: string;

beforeEach(() => {
  where.root = temp.make('keymesh-bench-outputs-');
  mkdirSync(join(where.root, 'bench'));
  printed = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed += String(chunk);
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  temp.cleanup();
});

describe('rawFilePath', () => {
  it('names bench/raw/bench-<date>.json by the date to the second, without colons', () => {
    const path = rawFilePath(new Date('2026-01-02T03:04:05.678Z'));
    expect(path).toBe(join(where.root, 'bench/raw/bench-2026-01-02T03-04-05Z.json'));
  });

  it('creates bench/raw when it is missing', () => {
    const path = rawFilePath(new Date('2026-01-02T03:04:05.000Z'));
    expect(existsSync(dirname(path))).toBe(true);
  });
});

describe('writePart', () => {
  const render = (r: { n: number }) => `# part with ${r.n}\n`;

  it('starts the raw JSON when no earlier part wrote it (--only)', () => {
    const raw = rawFilePath(new Date('2026-01-02T03:04:05.000Z'));
    writePart('snapshot', 'bench/results-snapshot.md', { n: 1 }, render, raw);
    expect(JSON.parse(readFileSync(raw, 'utf8'))).toEqual({ snapshot: { n: 1 } });
  });

  it('keeps what earlier parts wrote and adds its own figures under its name', () => {
    const raw = rawFilePath(new Date('2026-01-02T03:04:05.000Z'));
    writeFileSync(raw, JSON.stringify({ date: 'earlier', cluster: { size: 3 } }));
    writePart('rotation', 'bench/results-rotation.md', { n: 2 }, render, raw);
    writePart('audit', 'bench/results-audit.md', { n: 3 }, render, raw);
    expect(JSON.parse(readFileSync(raw, 'utf8'))).toEqual({
      date: 'earlier',
      cluster: { size: 3 },
      rotation: { n: 2 },
      audit: { n: 3 },
    });
  });

  it('replaces its own earlier figures when it runs again', () => {
    const raw = rawFilePath(new Date('2026-01-02T03:04:05.000Z'));
    writePart('rotation', 'bench/results-rotation.md', { n: 2 }, render, raw);
    writePart('rotation', 'bench/results-rotation.md', { n: 5 }, render, raw);
    expect(JSON.parse(readFileSync(raw, 'utf8'))).toEqual({ rotation: { n: 5 } });
    expect(readFileSync(join(where.root, 'bench/results-rotation.md'), 'utf8')).toBe('# part with 5\n');
  });

  it('writes the rendered summary under the root and prints it with both paths', () => {
    const raw = rawFilePath(new Date('2026-01-02T03:04:05.000Z'));
    writePart('snapshot', 'bench/results-snapshot.md', { n: 7 }, render, raw);
    const summary = join(where.root, 'bench/results-snapshot.md');
    expect(readFileSync(summary, 'utf8')).toBe('# part with 7\n');
    expect(printed).toContain('# part with 7\n');
    expect(printed).toContain(`raw results: ${raw} (under "snapshot")`);
    expect(printed).toContain(`summary: ${summary}`);
  });
});
