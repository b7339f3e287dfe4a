/**
 * Expressions: a string that is exactly `{% … %}` is a JSONata expression
 * (the `jsonata` package, as AWS Step Functions uses), evaluated against
 * `{input, steps, item, index, iteration, execution}`. Unlike `{{…}}`
 * templates they compute (comparisons, functions). Evaluation is bounded in
 * time and depth, so a definition cannot hold a worker forever; any failure is
 * EXPRESSION_FAILED (not retryable: the same expression on the same data
 * fails again) naming where the expression stands.
 */
import jsonata from 'jsonata';
import { SmartSpecError } from '../errors.js';

const EXPRESSION = /^\{%([\s\S]*)%\}$/;

/** How long one evaluation may run, how deep it may nest, and the longest sequence it may build. */
export const EXPRESSION_BOUNDS = { timeoutMs: 1_000, maxDepth: 500, maxSequence: 1_000_000 } as const;

export class ExpressionError extends SmartSpecError {
  constructor(message: string, details: Record<string, unknown>) {
    super('EXPRESSION_FAILED', message, { details });
  }
}

/** The body of a `{% … %}` string, or undefined for any other value. */
export function expressionBody(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return EXPRESSION.exec(value)?.[1];
}

export const isExpression = (value: unknown): value is string => expressionBody(value) !== undefined;

/** A `{%` … `%}` inside a longer string would silently stay text: refused at validation. */
export const isPartialExpression = (value: string): boolean => !isExpression(value) && /\{%[\s\S]*%\}/.test(value);

interface Compiled { expr: jsonata.Expression; steps: string[]; dynamicSteps: boolean }
const compiled = new Map<string, Compiled>();
const MAX_CACHED = 10_000;

/** Where a parse failed: the JSONata error with its position inside the `{% … %}` body. */
export interface ParseProblem { message: string; position: number }

/**
 * Parse an expression body (cached: definitions run the same expressions again and again).
 * Throws ExpressionError with the JSONata error and its position.
 */
function compile(body: string): Compiled {
  let c = compiled.get(body);
  if (c) return c;
  let expr: jsonata.Expression;
  try {
    expr = jsonata(body, { timeout: EXPRESSION_BOUNDS.timeoutMs, stack: EXPRESSION_BOUNDS.maxDepth, sequence: EXPRESSION_BOUNDS.maxSequence });
  } catch (err) {
    const e = err as jsonata.JsonataError;
    throw new ExpressionError(`does not parse at position ${e.position ?? 0}: ${e.message}`, { position: e.position ?? 0, jsonataCode: e.code });
  }
  const refs = stepRefs(expr.ast());
  c = { expr, steps: [...refs.ids], dynamicSteps: refs.dynamic };
  if (compiled.size >= MAX_CACHED) compiled.clear();
  compiled.set(body, c);
  return c;
}

/** The parse problem of an expression body, or undefined when it parses. */
export function parseProblem(body: string): ParseProblem | undefined {
  try {
    compile(body);
    return undefined;
  } catch (err) {
    if (!(err instanceof ExpressionError)) throw err;
    return { message: err.message, position: err.details!.position as number };
  }
}

/**
 * The steps an expression reads (`steps.<id>…` anywhere in it), and whether it reaches into
 * `steps` without naming a step (`steps.*`, `steps[…]`): validation refuses those, as it could
 * not tell whether the step is certain to have run.
 */
export function expressionStepRefs(body: string): { ids: string[]; dynamic: boolean } {
  const c = compile(body);
  return { ids: c.steps, dynamic: c.dynamicSteps };
}

function stepRefs(ast: jsonata.ExprNode): { ids: Set<string>; dynamic: boolean } {
  const ids = new Set<string>();
  let dynamic = false;
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit);
    if (!node || typeof node !== 'object') return;
    const n = node as jsonata.ExprNode;
    if ((n.type as string) === 'path' && Array.isArray(n.steps)) {
      const [first, second] = n.steps;
      if (first?.type === 'name' && first.value === 'steps') {
        if (second?.type === 'name' && !first.stages?.length) ids.add(String(second.value));
        else dynamic = true;
      }
    }
    for (const v of Object.values(n)) if (v && typeof v === 'object') visit(v);
  };
  visit(ast);
  return { ids, dynamic };
}

/** What an expression may read. */
export interface ExpressionScope {
  input: unknown;
  steps: Record<string, { output: unknown }>;
  execution: { id: string; workflowId: string };
  item?: unknown;
  index?: number;
  iteration?: number;
}

/**
 * Evaluate one expression. `at` names where it stands (`steps[2].cases[0].when`) for the error.
 * The result is plain JSON (a JSONata "no match" is null).
 */
export async function evaluateExpression(text: string, scope: ExpressionScope, at: string): Promise<unknown> {
  const body = expressionBody(text);
  if (body === undefined) throw new ExpressionError(`${at}: not a {% … %} expression`, { path: at });
  let c: Compiled;
  try {
    c = compile(body);
  } catch (err) {
    throw new ExpressionError(`${at}: expression ${(err as Error).message}`, { path: at, ...(err as ExpressionError).details });
  }
  try {
    const result = await c.expr.evaluate(scope);
    return result === undefined ? null : JSON.parse(JSON.stringify(result) ?? 'null');
  } catch (err) {
    const e = err as jsonata.JsonataError;
    const message = e.code === 'D1012' ? `ran past ${EXPRESSION_BOUNDS.timeoutMs} ms` : e.code === 'D1011' ? `nested deeper than ${EXPRESSION_BOUNDS.maxDepth}` : e.message;
    throw new ExpressionError(`${at}: expression failed${e.position !== undefined ? ` at position ${e.position}` : ''}: ${message}`, {
      path: at,
      ...(e.code ? { jsonataCode: e.code } : {}),
      ...(e.position !== undefined ? { position: e.position } : {}),
    });
  }
}
