/**
 * Route-level validation with zod: `router.post('/x', validate({ body }), handler)`.
 * A failure is a 422 whose `errors` name every offending field, e.g.
 * `{ path: 'body.steps[0].id', message: ... }`, located in body, query or params.
 */
import type { Context, Middleware } from 'koa';
import type { z } from 'zod';
import { RequestValidationError, type FieldIssue } from '../errors.js';

export interface RequestSchemas {
  body?: z.ZodType;
  query?: z.ZodType;
  params?: z.ZodType;
}

/** The parsed (coerced, defaulted) values of the parts that had a schema. */
export type Validated<S extends RequestSchemas> = {
  [K in keyof S]: S[K] extends z.ZodType ? z.output<S[K]> : never;
};

const PARTS = ['params', 'query', 'body'] as const;

/** `body.steps[0].id`: the location, then the path inside it. */
export function formatIssuePath(part: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : `${acc}.${String(key)}`), part);
}

function input(ctx: Context, part: (typeof PARTS)[number]): unknown {
  if (part === 'body') return ctx.request.body;
  if (part === 'query') return ctx.query;
  return (ctx as Context & { params?: Record<string, string> }).params ?? {};
}

/** Validate now and return typed values; throws RequestValidationError (422) listing all issues. */
export function validateRequest<S extends RequestSchemas>(ctx: Context, schemas: S): Validated<S> {
  const issues: FieldIssue[] = [];
  const out: Record<string, unknown> = {};
  for (const part of PARTS) {
    const schema = schemas[part];
    if (!schema) continue;
    const result = schema.safeParse(input(ctx, part));
    if (result.success) out[part] = result.data;
    else for (const i of result.error.issues) issues.push({ path: formatIssuePath(part, i.path), message: i.message });
  }
  if (issues.length > 0) throw new RequestValidationError(issues);
  return out as Validated<S>;
}

/** Middleware form: stores the typed values in `ctx.state.validated`. */
export function validate<S extends RequestSchemas>(schemas: S): Middleware<{ validated: Validated<S> }> {
  return async function validate(ctx, next) {
    ctx.state.validated = validateRequest(ctx as unknown as Context, schemas);
    await next();
  };
}
