/**
 * Request validation answers in keymesh's words: the field and what it must be, never the caller's value and
 * never the validation library's message.
 */
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { isKeymeshError } from '../../../src/errors.js';
import { parseInput } from '../../../src/http/validate.js';

const schema = z.object({
  grant_type: z.string().min(1).max(16),
  renewable: z.enum(['true', 'false']).optional(),
  client_entropy: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,8}$/, 'base64url')
    .optional(),
  token: z.string().regex(/^x+$/).optional(),
});

function message(value: unknown): string {
  try {
    parseInput(schema, value, 'body');
  } catch (err) {
    if (isKeymeshError(err, 'ERR_INVALID_REQUEST')) return err.message;
  }
  return 'no error';
}

describe('parseInput', () => {
  it('names the field and the rule, and echoes neither the value nor the library', () => {
    const evil = '<script>alert(1)</script>';
    expect(message({})).toBe('body field "grant_type": is required');
    expect(message({ grant_type: 7 })).toBe('body field "grant_type": must be a string');
    expect(message({ grant_type: `${evil}${evil}` })).toBe('body field "grant_type": is too long (at most 16)');
    expect(message({ grant_type: 'x', renewable: evil })).toBe(
      'body field "renewable": must be one of "true", "false"',
    );
    expect(message({ grant_type: 'x', client_entropy: evil })).toBe('body field "client_entropy": base64url');
    expect(message({ grant_type: 'x', token: evil })).toBe('body field "token": is not a valid value');
    for (const value of [
      { grant_type: evil.repeat(3) },
      { grant_type: 'x', renewable: evil },
      { grant_type: 'x', token: evil },
    ]) {
      expect(message(value)).not.toMatch(/script|Invalid|received/);
    }
  });
});
