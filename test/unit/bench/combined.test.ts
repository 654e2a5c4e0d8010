/** `writeCombinedResults` (tools/bench/combined.ts): bench/results.md put together from the part files that exist. */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeCombinedResults } from '../../../tools/bench/combined.js';
import { TempDirs } from '../../helpers/temp-dir.js';

const temp = new TempDirs();
let root: string;

function part(name: string, body: string): void {
  writeFileSync(join(root, `bench/results-${name}.md`), body);
}

beforeEach(() => {
  root = temp.make('keymesh-bench-combined-');
  mkdirSync(join(root, 'bench'));
});
afterEach(() => temp.cleanup());

describe('writeCombinedResults', () => {
  const NOW = new Date('2026-01-02T03:04:05.000Z');

  it('writes bench/results.md under the root and returns its path', () => {
    part('node', '# keymesh node benchmark\n');
    const path = writeCombinedResults(root, NOW);
    expect(path).toBe(join(root, 'bench/results.md'));
    expect(existsSync(path)).toBe(true);
  });

  it('lists exactly the parts that have a summary, in the fixed order, with their files', () => {
    part('registrations', '# Registrations at run time\n\nregistrations body\n');
    part('node', '# keymesh node benchmark\n\nnode body\n');
    part('not-a-part', '# stray\n');
    const text = readFileSync(writeCombinedResults(root, NOW), 'utf8');
    const list = text.split('\n').filter((line) => line.startsWith('- ['));
    expect(list).toEqual([
      '- [One node: JWKS, 304, decrypt, start time, memory](#node) (`bench/results-node.md`)',
      '- [Registrations: a change honoured on every node of 5, and during a partition](#registrations) (`bench/results-registrations.md`)',
    ]);
    expect(text).not.toContain('stray');
    expect(text).not.toContain('#cluster');
  });

  it('includes each body under its anchor, in the same order as the list', () => {
    part('registrations', 'registrations body\n');
    part('node', 'node body\n');
    const text = readFileSync(writeCombinedResults(root, NOW), 'utf8');
    const node = text.indexOf('<a id="node"></a>\n\nnode body');
    const registrations = text.indexOf('<a id="registrations"></a>\n\nregistrations body');
    expect(node).toBeGreaterThan(0);
    expect(registrations).toBeGreaterThan(node);
  });

  it("moves each part's headings one level down, so its title becomes a section", () => {
    part('cluster', '# keymesh cluster benchmark\n\n## Rotation propagation\n\ntext with a # inside\n');
    const text = readFileSync(writeCombinedResults(root, NOW), 'utf8');
    expect(text).toContain('\n## keymesh cluster benchmark\n');
    expect(text).toContain('\n### Rotation propagation\n');
    expect(text).toContain('\ntext with a # inside\n');
    expect(text.match(/^# /gm)).toEqual(['# ']);
  });

  it('starts with its own title and the time it was put together, and ends with one newline', () => {
    part('node', 'node body\n\n\n');
    const text = readFileSync(writeCombinedResults(root, NOW), 'utf8');
    expect(text.startsWith('# keymesh benchmarks\n\nPut together 2026-01-02T03:04:05.000Z on ')).toBe(true);
    expect(text.endsWith('node body\n')).toBe(true);
  });

  it('writes only the heading when no part has run, and replaces an older combined file', () => {
    writeFileSync(join(root, 'bench/results.md'), 'old contents');
    const text = readFileSync(writeCombinedResults(root, NOW), 'utf8');
    expect(text).not.toContain('old contents');
    expect(text).not.toContain('- [');
    expect(text).not.toContain('<a id=');
  });
});
