import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as defaults from '../../src/config/defaults.js';
import { configSchema } from '../../src/config/schema.js';
import { ERROR_CODES } from '../../src/errors.js';

const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');

describe('README', () => {
  it('documents every error code', () => {
    for (const code of Object.keys(ERROR_CODES)) expect(readme, code).toContain(`\`${code}\``);
  });

  it('documents every default value', () => {
    for (const [name, value] of Object.entries(defaults)) {
      if (!name.startsWith('DEFAULT_')) continue;
      const shown = typeof value === 'string' ? `"${value}"` : String(value);
      expect(readme, name).toContain(shown);
    }
  });

  it('documents every top-level config key', () => {
    for (const key of Object.keys(configSchema.shape)) expect(readme, key).toMatch(new RegExp(`\\| \`${key}[.\`]`));
  });
});
