/**
 * Form fields described once, checked two ways. A form is a table of string fields (length bounds, a pattern or a
 * fixed set of values, one value or a short list); from it come a zod schema and a precompiled check.
 *
 * The precompiled check runs first on every request: a loop over the table with no allocation but the result. It
 * only ever accepts: anything it does not accept (a missing, overlong, malformed or wrongly shaped field) goes to
 * the zod schema, which refuses it in keymesh's words (`parseInput`), or accepts it when the check was stricter
 * than the schema. Both come from the same table, so they cannot disagree on what a field allows; a test holds
 * them to it (`test/unit/http/form-rules.test.ts`). Fields the table does not name are dropped, as zod drops them.
 */
import { z } from 'zod';
import { parseInput } from './validate.js';

/** The rule of one string field. */
export interface FieldRule {
  /** Shortest value, in UTF-16 code units. Default is 0. */
  readonly min?: number;
  /** Longest value, in UTF-16 code units; unbounded when absent (a pattern bounds it instead). */
  readonly max?: number;
  /** A pattern the whole value matches, and what the error says it must be. */
  readonly pattern?: { readonly regex: RegExp; readonly says: string };
  /** The only values allowed. */
  readonly values?: readonly [string, ...string[]];
  /** Whether the field must be present. Default is false. */
  readonly required?: boolean;
  /** Also a list of 1 to `many` values, each following the rule (a repeated form field). */
  readonly many?: number;
}

export type FormRules = Readonly<Record<string, FieldRule>>;

/** A form parser made from rules; `F` is the form's type, which the caller states to match the rules. */
export interface CompiledForm<F> {
  /** The zod schema of the same rules (what refuses, and names the field). */
  readonly schema: z.ZodType;
  /**
   * The checked form: the fast check's result when it accepts, else the schema's.
   * @throws KeymeshError `ERR_INVALID_REQUEST` naming the first offending field (`parseInput`).
   */
  parse(body: unknown, what: string): F;
  /** The fast check alone: the checked form, or undefined when the schema must decide. */
  fast(body: unknown): F | undefined;
}

function fieldSchema(rule: FieldRule): z.ZodType {
  let one: z.ZodType;
  if (rule.values) one = rule.values.length === 1 ? z.literal(rule.values[0]) : z.enum(rule.values);
  else {
    let text = z.string();
    if (rule.min !== undefined) text = text.min(rule.min);
    if (rule.max !== undefined) text = text.max(rule.max);
    if (rule.pattern) text = text.regex(rule.pattern.regex, rule.pattern.says);
    one = text;
  }
  const field = rule.many === undefined ? one : z.union([one, z.array(one).min(1).max(rule.many)]);
  return rule.required ? field : field.optional();
}

function accepts(rule: FieldRule, value: string): boolean {
  if (rule.values) return rule.values.includes(value);
  if (value.length < (rule.min ?? 0) || value.length > (rule.max ?? Infinity)) return false;
  return rule.pattern === undefined || rule.pattern.regex.test(value);
}

/** Compiles `rules` into a schema and a fast check. */
export function compileForm<F>(rules: FormRules): CompiledForm<F> {
  const fields = Object.entries(rules);
  const schema = z.object(Object.fromEntries(fields.map(([name, rule]) => [name, fieldSchema(rule)])));
  const fast = (body: unknown): F | undefined => {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
    const input = body as Record<string, unknown>;
    const out: Record<string, string | string[]> = {};
    for (const [name, rule] of fields) {
      const value = input[name];
      if (value === undefined) {
        if (rule.required) return undefined;
      } else if (typeof value === 'string') {
        if (!accepts(rule, value)) return undefined;
        out[name] = value;
      } else if (rule.many !== undefined && Array.isArray(value)) {
        if (value.length < 1 || value.length > rule.many) return undefined;
        for (const v of value) if (typeof v !== 'string' || !accepts(rule, v)) return undefined;
        out[name] = [...(value as string[])];
      } else return undefined;
    }
    return out as F;
  };
  return {
    schema,
    fast,
    parse: (body, what) => fast(body) ?? (parseInput(schema, body, what) as F),
  };
}
