/**
 * Templates: `{{input.x}}`, `{{steps.<id>.output.<path>}}`, `{{execution.id}}`,
 * `{{secrets.NAME}}`. They are path lookups into plain data, never code
 * evaluation. Pure. `secrets` is in the scope only while a step runs (the
 * worker fetches the values the step names, src/secrets): never stored.
 */
import { SmartSpecError } from '../errors.js';

const TEMPLATE = /\{\{\s*([^{}]*?)\s*\}\}/g;
const WHOLE = /^\{\{\s*([^{}]*?)\s*\}\}$/;
const SEGMENT = /^[A-Za-z0-9_-]+$/;
export const TEMPLATE_ROOTS = ['input', 'steps', 'execution', 'secrets'] as const;

export interface TemplateRef {
  /** The template as written, e.g. `{{steps.a.output.text}}`. */
  raw: string;
  /** Its path, e.g. ['steps', 'a', 'output', 'text']. */
  path: string[];
  /** Where it was found inside the value, e.g. `request.body.spec`. */
  at: string;
}

export interface TemplateScope {
  input: unknown;
  steps: Record<string, { output: unknown }>;
  execution: { id: string; workflowId: string };
  /** The values of the secrets the running step names; absent everywhere else. */
  secrets?: Record<string, string>;
}

export class TemplateError extends SmartSpecError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('TEMPLATE_ERROR', message, { details });
  }
}

/** Every template inside a JSON-like value, with where it stands. Throws on a malformed path. */
export function collectTemplates(value: unknown, at = ''): TemplateRef[] {
  if (typeof value === 'string') {
    const refs: TemplateRef[] = [];
    try {
      for (const m of value.matchAll(TEMPLATE)) refs.push({ raw: m[0], path: splitPath(m[1], m[0]), at });
    } catch (err) {
      if (err instanceof TemplateError) throw new TemplateError(err.message, { at });
      throw err;
    }
    // Braces left over once the templates are taken out: a template that is not closed or opened.
    if (/\{\{|\}\}/.test(value.replace(TEMPLATE, ''))) throw new TemplateError(`unbalanced template braces in '${value}'`, { at });
    return refs;
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => collectTemplates(v, join(at, String(i))));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => collectTemplates(v, join(at, k)));
  }
  return [];
}

function splitPath(expr: string, raw: string): string[] {
  const path = expr.split('.');
  if (path.length === 0 || path.some((s) => !SEGMENT.test(s))) {
    throw new TemplateError(`'${raw}' is not a path (use dot-separated names like input.x or steps.a.output.text)`);
  }
  return path;
}

const join = (a: string, b: string) => (a ? `${a}.${b}` : b);

/** Look a path up in the scope. `found` is false when any segment is missing. */
export function lookup(scope: TemplateScope, path: string[]): { found: boolean; value: unknown } {
  let cur: unknown = scope;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, seg)) return { found: false, value: undefined };
    cur = (cur as Record<string, unknown>)[seg];
  }
  return { found: true, value: cur };
}

function resolveOne(ref: { raw: string; path: string[] }, scope: TemplateScope): unknown {
  const { found, value } = lookup(scope, ref.path);
  if (!found) throw new TemplateError(`${ref.raw} does not resolve: no value at '${ref.path.join('.')}'`, { template: ref.raw });
  return value;
}

/**
 * Resolve every template in a value. A string that is exactly one template
 * becomes the looked-up value itself (objects stay objects); templates inside
 * longer strings are interpolated (non-strings as JSON).
 */
export function resolveTemplates(value: unknown, scope: TemplateScope): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE.exec(value);
    if (whole) return resolveOne({ raw: value, path: splitPath(whole[1], value) }, scope);
    return value.replace(TEMPLATE, (raw, expr: string) => {
      const v = resolveOne({ raw, path: splitPath(expr, raw) }, scope);
      return typeof v === 'string' ? v : JSON.stringify(v) ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((v) => resolveTemplates(v, scope));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveTemplates(v, scope)]));
  }
  return value;
}

/** `when` semantics: missing, false, null, 0, '' and 'false' skip the step. */
export function evaluateWhen(when: string, scope: TemplateScope): boolean {
  let v: unknown;
  try {
    v = resolveTemplates(when, scope);
  } catch (err) {
    if (err instanceof TemplateError) return false;
    throw err;
  }
  return !(v === undefined || v === null || v === false || v === 0 || v === '' || v === 'false');
}
