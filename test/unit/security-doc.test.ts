/**
 * docs/security.md names, for each requirement of RFC 9700 and RFC 8725, the test that shows it. Every test it
 * names must exist under the title it quotes, and every source file it points at must exist.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const doc = readFileSync(join(root, 'docs', 'security.md'), 'utf8');

function testSources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return testSources(path);
    return name.endsWith('.test.ts') ? [readFileSync(path, 'utf8')] : [];
  });
}

describe('docs/security.md', () => {
  const rows = doc.split('\n').filter((line) => line.startsWith('| §'));

  it('has a row for every requirement it covers', () => {
    expect(rows.length).toBeGreaterThanOrEqual(20);
  });

  it('cites only tests that exist, by their exact titles', () => {
    const sources = testSources(join(root, 'test')).join('\n');
    const cited = rows.flatMap((row) => {
      const tests = row.split(' | ').at(-1) ?? '';
      return [...tests.matchAll(/'([^']{8,})'|"([^"]{8,})"/g)].map((m) => m[1] ?? m[2]!);
    });
    expect(cited.length).toBeGreaterThan(30);
    const missing = cited.filter((title) => !sources.includes(`it('${title}'`) && !sources.includes(`it("${title}"`));
    expect(missing).toEqual([]);
  });

  it('points only at source files that exist', () => {
    const files = [...doc.matchAll(/`(src\/[A-Za-z0-9/_.-]+\.ts)`/g)].map((m) => m[1]!);
    expect(files.length).toBeGreaterThan(10);
    expect(files.filter((file) => !existsSync(join(root, file)))).toEqual([]);
  });
});
