/**
 * The configuration and error references are generated from the code (`tools/docs/generate.ts`). These tests keep
 * them honest: the committed files are what the generator renders now, every option and every error code is
 * documented and nothing documented is missing from the code, and every default constant is shown where it applies.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as defaults from '../../src/config/defaults.js';
import { CONFIG_DESCRIPTIONS, configOptions, configPaths, LOADER_DEFAULTS } from '../../src/config/descriptions.js';
import { ERROR_CODES } from '../../src/errors.js';
import { GENERATED_FILES, renderConfiguration, renderErrors } from '../../tools/docs/generate.js';

const root = resolve(import.meta.dirname, '../..');
const read = (path: string) => readFileSync(resolve(root, path), 'utf8');
const STALE = 'is stale: run `npm run docs` and commit the result';

/** `DEFAULT_*` constants that are no config key's default (they are defaults inside array entries). */
const NOT_A_KEY_DEFAULT = new Set(['DEFAULT_REALM']);

/** The rows of a Markdown table whose first cell is code, as cells (an escaped `\|` inside a cell is not a separator). */
function tableRows(markdown: string): string[][] {
  return markdown
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .map((line) => line.slice(2, -2).split(' | '));
}

/** Every code a Markdown file names (`ERR_…` and wildcards such as `ERR_PKCS11_*` are not codes). */
function codesNamedIn(markdown: string): string[] {
  return [...markdown.matchAll(/\bERR_[A-Z0-9_]*[A-Z0-9]\b/g)].map((m) => m[0]);
}

describe('generated references', () => {
  it('docs/configuration.md is what the generator renders now', () => {
    expect(read(GENERATED_FILES.configuration), `${GENERATED_FILES.configuration} ${STALE}`).toBe(
      renderConfiguration(),
    );
  });

  it('docs/errors.md is what the generator renders now', () => {
    expect(read(GENERATED_FILES.errors), `${GENERATED_FILES.errors} ${STALE}`).toBe(renderErrors());
  });
});

describe('config descriptions (src/config/descriptions.ts)', () => {
  const paths = configPaths();

  it('lists options at documentation granularity', () => {
    expect(paths).toEqual(
      expect.arrayContaining([
        'http.tls.certFile',
        'realms.<name>',
        'realms.<name>.keys.sig.alg',
        'realms.<name>.keys.<use>.prePublishMs',
        'clients',
      ]),
    );
    expect(paths.filter((p) => p.startsWith('clients.') || p.includes('.sig.prePublishMs'))).toEqual([]);
  });

  it('describe every option of the schema', () => {
    expect(
      paths.filter((p) => !(p in CONFIG_DESCRIPTIONS)),
      'options without a description',
    ).toEqual([]);
  });

  it('describe only options the schema has', () => {
    const documented = [...Object.keys(CONFIG_DESCRIPTIONS), ...Object.keys(LOADER_DEFAULTS)];
    expect(
      documented.filter((p) => !paths.includes(p)),
      'descriptions of options the schema does not have',
    ).toEqual([]);
  });
});

describe('error codes', () => {
  const docs = [
    'README.md',
    ...readdirSync(resolve(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
  ];

  it('docs/errors.md has a row for every code of ERROR_CODES', () => {
    const listed = new Set(tableRows(read(GENERATED_FILES.errors)).map((cells) => cells[0]));
    expect(Object.keys(ERROR_CODES).filter((code) => !listed.has(`\`${code}\``))).toEqual([]);
  });

  it('README.md and docs/*.md name only codes that exist', () => {
    const unknown = docs.flatMap((file) =>
      codesNamedIn(read(file))
        .filter((code) => !(code in ERROR_CODES))
        .map((code) => `${file}: ${code}`),
    );
    expect([...new Set(unknown)]).toEqual([]);
  });
});

describe('defaults (src/config/defaults.ts)', () => {
  const shown = new Map(
    tableRows(read(GENERATED_FILES.configuration)).map((cells) => [cells[0]?.replace(/`/g, ''), cells[1] ?? '']),
  );
  const constants = Object.entries(defaults).filter(([name]) => name.startsWith('DEFAULT_'));

  it('shows every DEFAULT_* constant as the default of the keys it is the default of', () => {
    const wrong: string[] = [];
    for (const [name, value] of constants) {
      const keys = configOptions().filter(
        (o) => o.default !== undefined && JSON.stringify(o.default.value) === JSON.stringify(value),
      );
      if (keys.length === 0 && !NOT_A_KEY_DEFAULT.has(name)) wrong.push(`${name} is no key's default`);
      for (const key of keys) {
        if (!shown.get(key.path)?.startsWith(`\`${JSON.stringify(value)}\``))
          wrong.push(`${name} is not shown as the default of ${key.path}`);
      }
    }
    expect(wrong).toEqual([]);
  });
});
