/**
 * JSONata expressions for event triggers and waits: a string that is exactly
 * `{% … %}` is an expression; any other value is a literal whose nested
 * expression strings are evaluated in place. Evaluation is bounded (time and
 * stack depth, jsonata's own guardrails); compiled expressions are cached.
 */
import jsonata from 'jsonata';
import { SmartSpecError } from '../errors.js';

const EXPRESSION = /^\{%([\s\S]*)%\}$/;
/** Wall-clock time, awaits included: evaluations run one at a time where many are due (a dispatcher's candidates). */
const TIMEOUT_MS = 1000;
const MAX_DEPTH = 200;
const CACHE_SIZE = 1000;

export class ExpressionError extends SmartSpecError {
  constructor(path: string, message: string) {
    super('EXPRESSION_FAILED', `${path}: ${message}`, { details: { path } });
  }
}

const compiled = new Map<string, jsonata.Expression>();

/** The body of `{% … %}`, or undefined when the value is not an expression. */
export function expressionBody(value: unknown): string | undefined {
  return typeof value === 'string' ? EXPRESSION.exec(value)?.[1] : undefined;
}

/** Compile (cached); throws ExpressionError naming `path` when the expression does not parse. */
export function compile(body: string, path: string): jsonata.Expression {
  let expr = compiled.get(body);
  if (expr) return expr;
  try {
    expr = jsonata(body, { timeout: TIMEOUT_MS, stack: MAX_DEPTH });
  } catch (err) {
    throw new ExpressionError(path, `the expression does not parse: ${(err as Error).message}`);
  }
  if (compiled.size >= CACHE_SIZE) compiled.delete(compiled.keys().next().value!);
  compiled.set(body, expr);
  return expr;
}

/** Every problem with the expressions inside `value` (for validation), each naming its path. */
export function expressionProblems(value: unknown, path: string): { path: string; message: string }[] {
  const body = expressionBody(value);
  if (body !== undefined) {
    try {
      compile(body, path);
      return [];
    } catch (err) {
      return [{ path, message: (err as Error).message.slice(path.length + 2) }];
    }
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => expressionProblems(v, `${path}[${i}]`));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => expressionProblems(v, `${path}.${k}`));
  return [];
}

/** Evaluate `value` against `context`: an expression gives its result (undefined → null), a literal has its expressions replaced. */
export async function evaluate(value: unknown, context: Record<string, unknown>, path: string): Promise<unknown> {
  const body = expressionBody(value);
  if (body !== undefined) {
    try {
      const result = await compile(body, path).evaluate(context);
      return result === undefined ? null : plain(result);
    } catch (err) {
      if (err instanceof ExpressionError) throw err;
      throw new ExpressionError(path, (err as Error).message ?? String(err));
    }
  }
  if (Array.isArray(value)) return Promise.all(value.map((v, i) => evaluate(v, context, `${path}[${i}]`)));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = await evaluate(v, context, `${path}.${k}`);
    return out;
  }
  return value;
}

/** A condition: true only for a result that is literally true (a typo must not match everything). */
export async function isTrue(value: unknown, context: Record<string, unknown>, path: string): Promise<boolean> {
  return (await evaluate(value, context, path)) === true;
}

/** jsonata marks sequences with extra properties: keep plain JSON. */
function plain(v: unknown): unknown {
  return v !== null && typeof v === 'object' ? JSON.parse(JSON.stringify(v)) : v;
}
