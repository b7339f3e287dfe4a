/**
 * Resolving a step's fields at run time: `{{…}}` templates are path lookups,
 * `{% … %}` expressions are evaluated (JSONata, bounded). Used by the worker
 * only: what they gave is recorded (a step's output, its skip, a decision),
 * so replay and resume never evaluate them again.
 */
import { expressionBody, expressionStepRefs, evaluateExpression, type ExpressionScope } from './expressions.js';
import { collectTemplates, evaluateWhen, resolveTemplates, type TemplateScope } from './templates.js';
import { templatedFields } from './references.js';
import type { Step } from '../../machines/definition.js';

export type ResolveScope = TemplateScope & Partial<Pick<ExpressionScope, 'item' | 'index' | 'iteration'>>;

const holdsCache = new WeakMap<Step, boolean>();

function holdsExpression(value: unknown): boolean {
  if (typeof value === 'string') return expressionBody(value) !== undefined;
  if (Array.isArray(value)) return value.some(holdsExpression);
  if (value && typeof value === 'object') return Object.values(value).some(holdsExpression);
  return false;
}

/** Whether any field of the step (its `when` included) is or holds an expression. */
export function stepHoldsExpressions(step: Step): boolean {
  let holds = holdsCache.get(step);
  if (holds === undefined) holdsCache.set(step, (holds = templatedFields(step).some(([, v]) => holdsExpression(v))));
  return holds;
}

/**
 * The roots a step's templates and expressions read: `input`, `steps.<id>`, `item`… An expression
 * may read the input anywhere in it, so a step with one reads `input`.
 */
export function rootsReadBy(value: unknown): Set<string> {
  const roots = new Set<string>();
  const visit = (v: unknown): void => {
    const body = expressionBody(v);
    if (body !== undefined) {
      roots.add('input');
      for (const id of expressionStepRefs(body).ids) roots.add(`steps.${id}`);
    } else if (typeof v === 'string') {
      for (const ref of collectTemplates(v)) roots.add(ref.path[0] === 'steps' ? `steps.${ref.path[1]}` : ref.path[0]);
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (v && typeof v === 'object') Object.values(v).forEach(visit);
  };
  visit(value);
  return roots;
}

const expressionScope = (scope: ResolveScope): ExpressionScope => ({
  input: scope.input,
  steps: scope.steps,
  execution: scope.execution,
  ...(scope.item !== undefined ? { item: scope.item } : {}),
  ...(scope.index !== undefined ? { index: scope.index } : {}),
  ...(scope.iteration !== undefined ? { iteration: scope.iteration } : {}),
});

/** Resolve templates and evaluate expressions in a value; `at` is its path in the definition (for errors). */
export async function resolveValue(value: unknown, scope: ResolveScope, at: string): Promise<unknown> {
  if (!holdsExpression(value)) return resolveTemplates(value, scope);
  if (typeof value === 'string') return evaluateExpression(value, expressionScope(scope), at);
  if (Array.isArray(value)) return Promise.all(value.map((v, i) => resolveValue(v, scope, `${at}[${i}]`)));
  const entries = await Promise.all(Object.entries(value as Record<string, unknown>).map(async ([k, v]) => [k, await resolveValue(v, scope, `${at}.${k}`)] as const));
  return Object.fromEntries(entries);
}

/** Whether a value counts as true for `when`, `until` and switch cases: missing, false, null, 0, '' and 'false' do not. */
export const isTruthy = (v: unknown): boolean => !(v === undefined || v === null || v === false || v === 0 || v === '' || v === 'false');

/** `when` (or a case's `when`, a loop's `until`): a template as before, or an expression's truthiness. */
export async function evaluateCondition(condition: string, scope: ResolveScope, at: string): Promise<boolean> {
  if (expressionBody(condition) === undefined) return evaluateWhen(condition, scope);
  return isTruthy(await evaluateExpression(condition, expressionScope(scope), at));
}

/** The step with its templated fields resolved and expressions evaluated; `at` is the step's path. */
export async function resolveStep(step: Step, scope: ResolveScope, at: string): Promise<Step> {
  const r = (v: unknown, field: string) => resolveValue(v, scope, `${at}.${field}`);
  switch (step.type) {
    case 'transform': return { ...step, value: await r(step.value, 'value') };
    case 'http': return { ...step, request: (await r(step.request, 'request')) as typeof step.request };
    case 'llm': return {
      ...step,
      prompt: String(await r(step.prompt, 'prompt')),
      model: String(await r(step.model, 'model')),
      ...(step.system ? { system: String(await r(step.system, 'system')) } : {}),
    };
    case 'fail': return { ...step, message: String(await r(step.message, 'message')) };
    default: return step;
  }
}
