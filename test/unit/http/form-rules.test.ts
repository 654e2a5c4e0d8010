/**
 * A form's precompiled check and its zod schema come from one table and never disagree: whatever the fast check
 * accepts, the schema accepts with the same values; whatever it passes on, the schema decides, and refuses in
 * keymesh's words naming the field.
 */
import { describe, expect, it } from 'vitest';
import { isKeymeshError } from '../../../src/errors.js';
import { z } from 'zod';
import { compileForm, type FormRules } from '../../../src/http/form-rules.js';
import { tokenForm } from '../../../src/http/routes/token-forms.js';
import { parseInput } from '../../../src/http/validate.js';

const rules: FormRules = {
  grant_type: { min: 1, max: 16, required: true },
  audience: { min: 1, max: 8, many: 3 },
  scope: { max: 10 },
  renewable: { values: ['true', 'false'] },
  token_encryption: { values: ['jwe'] },
  client_entropy: { pattern: { regex: /^[A-Za-z0-9_-]{1,8}$/, says: 'base64url' } },
};
const form = compileForm<Record<string, unknown>>(rules);

/** What the schema alone makes of `body`: the values, or its error message. */
function bySchema(body: unknown): unknown {
  try {
    return { ok: form.schema.parse(body) };
  } catch {
    try {
      form.parse(body, 'body');
    } catch (err) {
      if (isKeymeshError(err, 'ERR_INVALID_REQUEST')) return { error: err.message };
    }
    return { error: 'no keymesh error' };
  }
}

const bodies: unknown[] = [
  { grant_type: 'client_credentials' },
  { grant_type: 'cc', audience: 'a', scope: '', renewable: 'true', token_encryption: 'jwe', client_entropy: 'AbC_-9' },
  { grant_type: 'cc', audience: ['a', 'b', 'c'] },
  { grant_type: 'cc', extra: 'dropped', __proto__: { scope: 'inherited' } },
  {},
  { grant_type: '' },
  { grant_type: 'x'.repeat(17) },
  { grant_type: 'cc', audience: [] },
  { grant_type: 'cc', audience: ['a', 'b', 'c', 'd'] },
  { grant_type: 'cc', audience: ['a', 7] },
  { grant_type: 'cc', audience: 'x'.repeat(9) },
  { grant_type: 'cc', scope: ['a', 'b'] },
  { grant_type: 'cc', renewable: 'yes' },
  { grant_type: 'cc', token_encryption: 'jws' },
  { grant_type: 'cc', client_entropy: 'a+b' },
  { grant_type: 'cc', client_entropy: '123456789' },
  { grant_type: 7 },
  null,
  'grant_type=cc',
  ['cc'],
];

describe('compiled forms', () => {
  it('accept exactly what their schema accepts, with the same values', () => {
    for (const body of bodies) {
      const fast = form.fast(body);
      const schema = bySchema(body);
      if (fast !== undefined) expect(schema, JSON.stringify(body)).toEqual({ ok: fast });
      const parsed = (() => {
        try {
          return { ok: form.parse(body, 'body') };
        } catch (err) {
          return { error: isKeymeshError(err) ? err.message : String(err) };
        }
      })();
      expect(parsed, JSON.stringify(body)).toEqual(schema);
    }
  });

  it('take the common request without the schema, and drop fields the table does not name', () => {
    expect(form.fast({ grant_type: 'cc', audience: ['a', 'b'], other: 'x' })).toEqual({
      grant_type: 'cc',
      audience: ['a', 'b'],
    });
    expect(form.fast({ grant_type: 'x'.repeat(17) })).toBeUndefined();
  });

  it('refuse in keymesh’s words, naming the field and never echoing the value', () => {
    const message = (body: unknown) => bySchema(body) as { error?: string };
    expect(message({}).error).toBe('body field "grant_type": is required');
    expect(message({ grant_type: 'x'.repeat(17) }).error).toBe('body field "grant_type": is too long (at most 16)');
    expect(message({ grant_type: 'cc', renewable: 'yes' }).error).toBe(
      'body field "renewable": must be one of "true", "false"',
    );
    expect(message({ grant_type: 'cc', client_entropy: 'a+b' }).error).toBe('body field "client_entropy": base64url');
    expect(message({ grant_type: 'cc', audience: ['a', 'b', 'c', 'd'] }).error).toBe(
      'body field "audience": has the wrong shape',
    );
  });

  it('answer the token endpoint exactly as its hand-written zod schema did', () => {
    const aud = z.string().min(1).max(512);
    const oneOrMany = z.union([aud, z.array(aud).min(1).max(16)]).optional();
    const written = z.object({
      grant_type: z.string().min(1).max(256),
      audience: oneOrMany,
      resource: oneOrMany,
      scope: z.string().max(2048).optional(),
      requested_token_type: z.string().min(1).max(256).optional(),
      subject_token: z.string().min(1).max(65_536).optional(),
      subject_token_type: z.string().min(1).max(256).optional(),
      renewable: z.enum(['true', 'false']).optional(),
      token_encryption: z.literal('jwe').optional(),
      actor_token: z.string().max(16_384).optional(),
      actor_token_type: z.string().max(256).optional(),
      client_entropy: z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,128}$/, 'base64url')
        .optional(),
      key_size: z
        .string()
        .regex(/^\d{1,4}$/, 'a number of bits')
        .optional(),
      computed_key_algorithm: z.string().max(256).optional(),
      client_assertion_type: z.string().max(256).optional(),
      client_assertion: z.string().max(16_384).optional(),
    });
    const outcome = (parse: () => unknown) => {
      try {
        return { ok: parse() };
      } catch (err) {
        return { error: isKeymeshError(err) ? err.message : String(err) };
      }
    };
    const cases: unknown[] = [
      { grant_type: 'client_credentials' },
      { grant_type: 'client_credentials', audience: ['https://a', 'https://b'], resource: 'https://c', scope: 'r w' },
      { grant_type: 'x', key_size: '256', client_entropy: 'AAAA', renewable: 'false', token_encryption: 'jwe' },
      {},
      { grant_type: '' },
      { grant_type: 'x', audience: Array(17).fill('a') },
      { grant_type: 'x', audience: '' },
      { grant_type: 'x', key_size: '12345' },
      { grant_type: 'x', client_entropy: '=' },
      { grant_type: 'x', token_encryption: 'none' },
      { grant_type: 'x', scope: 's'.repeat(2049) },
      { grant_type: 'x', subject_token: '' },
      { grant_type: 'x', client_assertion: ['a', 'b'] },
    ];
    for (const body of cases)
      expect(
        outcome(() => tokenForm.parse(body, 'body')),
        JSON.stringify(body),
      ).toEqual(outcome(() => parseInput(written, body, 'body')));
  });
});
