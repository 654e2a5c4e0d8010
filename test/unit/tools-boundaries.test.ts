/**
 * The layout of tools/ (issue 17): each tool (tools/bench, tools/chaos, tools/demo, tools/local, ...) uses only
 * src/, tools/harness/ and its own folder; no tool reaches into another tool's internals, and nothing under tools/
 * uses test/. Every relative module a file names counts: imports (static, side-effect, dynamic, re-exports) and the
 * scripts it spawns (`new URL('./x.js', import.meta.url)`, `resolve(import.meta.dirname, '...')`).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const TOOLS = join(ROOT, 'tools');
const SHARED = 'harness';

/** Every module specifier a source names: imports, re-exports, dynamic imports and spawned sibling scripts. */
function specifiersOf(source: string): string[] {
  const patterns = [
    /(?:^|\n)\s*(?:import|export)\b[^;]*?\bfrom\s*['"]([^'"]+)['"]/g,
    /(?:^|\n)\s*import\s*['"]([^'"]+)['"]/g,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\bnew URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url/g,
    /\bimport\.meta\.dirname\s*,\s*['"]([^'"]+)['"]/g,
  ];
  return patterns.flatMap((p) => [...source.matchAll(p)].map((m) => m[1]!));
}

/** What is wrong with `file` (repository-relative, under tools/) naming `specifier`, or undefined. */
function violation(file: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined; // node: built-ins and packages
  const target = relative(ROOT, resolve(ROOT, dirname(file), specifier))
    .split(sep)
    .join('/');
  const [, own] = file.split('/');
  if (target === 'test' || target.startsWith('test/')) return `${file} uses ${target} (test code)`;
  if (!target.startsWith('tools/')) return undefined;
  const [, other] = target.split('/');
  if (other !== own && other !== SHARED)
    return `${file} reaches into tools/${other}/ (${specifier}); share it through tools/${SHARED}/ instead`;
  return undefined;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return tsFiles(path);
    return entry.name.endsWith('.ts') ? [relative(ROOT, path).split(sep).join('/')] : [];
  });
}

const files = tsFiles(TOOLS);
const named = new Map(files.map((file) => [file, specifiersOf(readFileSync(join(ROOT, file), 'utf8'))]));

describe('tools/ boundaries', () => {
  it('no file in tools/<x>/ imports from tools/<y>/ (y ≠ x, y ≠ harness) or from test/', () => {
    const problems = [...named].flatMap(([file, specifiers]) => specifiers.flatMap((s) => violation(file, s) ?? []));
    expect(problems).toEqual([]);
  });

  it('every file lives in a tool folder', () => {
    expect(files.filter((file) => file.split('/').length < 3)).toEqual([]);
  });

  it('reads the imports of every tool (so the check above is not vacuous)', () => {
    expect(files.length).toBeGreaterThan(50);
    for (const tool of ['bench', 'chaos', 'demo', 'local']) {
      const usesHarness = files.some(
        (file) => file.startsWith(`tools/${tool}/`) && named.get(file)!.some((s) => s.startsWith('../harness/')),
      );
      expect(usesHarness, `tools/${tool} uses tools/harness`).toBe(true);
    }
    expect(named.get('tools/local/run-nodes.ts')).toContain('../../src/cli/main.js');
  });

  it('catches what it is meant to catch', () => {
    const source = [
      "import { a } from '../bench/http.js';",
      'import {',
      '  b,',
      "} from '../harness/http.js';",
      "import '../../test/helpers/temp-dir.js';",
      "export { c } from './own.js';",
      "const d = await import('../demo/idp.js');",
      "const e = new URL('../chaos/main.js', import.meta.url);",
      "import { f } from 'node:fs';",
      " * a comment naming '../bench/x.js' is no import",
    ].join('\n');
    const specifiers = specifiersOf(source);
    expect(specifiers).toEqual([
      '../bench/http.js',
      '../harness/http.js',
      './own.js',
      'node:fs',
      '../../test/helpers/temp-dir.js',
      '../demo/idp.js',
      '../chaos/main.js',
    ]);
    expect(specifiers.map((s) => violation('tools/local/x.ts', s) !== undefined)).toEqual([
      true,
      false,
      false,
      false,
      true,
      true,
      true,
    ]);
    expect(violation('tools/harness/x.ts', '../bench/http.js')).toBeDefined();
    expect(violation('tools/bench/x.ts', '../../src/cli/main.js')).toBeUndefined();
  });
});
