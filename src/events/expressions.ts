/**
 * JSONata expressions in event triggers and waits, on the language's own
 * expressions (src/definition/expressions.ts: same syntax, bounds, cache and
 * EXPRESSION_FAILED): a string that is exactly `{% … %}` is an expression; any
 * other value is a literal whose nested expression strings are evaluated in
 * place. Here the scope is the event's (`event`, and a wait's `input`/`steps`).
 */
import { evaluateExpression, expressionBody, parseProblem, type ExpressionScope } from '../definition/expressions.js';

export { expressionBody };

/** Every problem with the expressions inside `value` (for validation), each naming its path. */
export function expressionProblems(value: unknown, path: string): { path: string; message: string }[] {
  const body = expressionBody(value);
  if (body !== undefined) {
    const problem = parseProblem(body);
    return problem ? [{ path, message: `the expression ${problem.message}` }] : [];
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => expressionProblems(v, `${path}[${i}]`));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => expressionProblems(v, `${path}.${k}`));
  return [];
}

/** Evaluate `value` against `context`: an expression gives its result (undefined → null), a literal has its expressions replaced. */
export async function evaluate(value: unknown, context: Record<string, unknown>, path: string): Promise<unknown> {
  if (expressionBody(value) !== undefined) return evaluateExpression(value as string, context as unknown as ExpressionScope, path);
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
