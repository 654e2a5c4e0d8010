import type { z } from 'zod';
import { KeymeshError } from '../errors.js';

/**
 * Parses a request body or query with a zod schema.
 * @throws KeymeshError `ERR_INVALID_REQUEST` naming the first offending field.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const r = schema.safeParse(value ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const field = issue.path.map(String).join('.');
  throw new KeymeshError('ERR_INVALID_REQUEST', `${what}${field ? ` field "${field}"` : ''}: ${issue.message}`);
}
