import type { z } from 'zod';
import { KeymeshError } from '../errors.js';

/**
 * Parses a request body or query with a zod schema.
 *
 * The error names the first offending field (a key of the schema, never one the caller made up) and what it must
 * be, in keymesh's own words: never the caller's value and never the validation library's message.
 * @throws KeymeshError `ERR_INVALID_REQUEST` naming the first offending field.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path
    .filter((p) => typeof p === 'number' || /^[A-Za-z0-9_.-]{1,64}$/.test(String(p)))
    .map(String)
    .join('.');
  throw new KeymeshError('ERR_INVALID_REQUEST', `${what}${field ? ` field "${field}"` : ''}: ${describe(issue)}`);
}

/** What a failed check requires, from the schema alone. */
function describe(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      // the library reports the received type only in its message; "undefined" there means the field is missing
      return issue.message.endsWith('received undefined')
        ? 'is required'
        : `must be ${article(String(issue.expected))}`;
    case 'too_big':
      return `is too ${issue.origin === 'string' || issue.origin === 'array' ? 'long' : 'large'} (at most ${String(issue.maximum)})`;
    case 'too_small':
      return `is too ${issue.origin === 'string' || issue.origin === 'array' ? 'short' : 'small'} (at least ${String(issue.minimum)})`;
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'invalid_format':
      // a pattern's own message is keymesh's wording (schemas give one); the library's default is not shown
      return issue.format === 'regex' && !issue.message.startsWith('Invalid')
        ? issue.message
        : `is not a valid ${issue.format === 'regex' ? 'value' : issue.format}`;
    case 'unrecognized_keys':
      return 'holds a key that is not accepted here';
    case 'invalid_union':
      return 'has the wrong shape';
    default:
      return 'is invalid';
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}
