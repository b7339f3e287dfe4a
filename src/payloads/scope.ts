/**
 * Templates over values kept by reference. The machine's context holds refs
 * (it stays pure and its snapshots small); when the runner builds a step's
 * template scope, it fetches the values the step's templates and expressions read,
 * and only those.
 */
import type { Step } from '../../machines/definition.js';
import type { TemplateScope } from '../definition/templates.js';
import { templatedFields } from '../definition/references.js';
import { rootsReadBy } from '../definition/resolve.js';
import { isPayloadRef } from './refs.js';
import type { PayloadStore } from './store.js';

/** Whether any value a template could read (the input, a step output) is a ref. */
/** Whether a step's scope (its input and the outputs it names) holds a value kept by reference. */
export function scopeHoldsRefs(scope: TemplateScope): boolean {
  if (isPayloadRef(scope.input)) return true;
  for (const id in scope.steps) if (isPayloadRef(scope.steps[id].output)) return true;
  return false;
}

/** Replace, in a scope, the refs that the step's templates (and `readsAlso`, e.g. a loop's `until`) read with their values. */
export async function resolveScopeRefs(scope: TemplateScope, step: Step, payloads: PayloadStore, readsAlso?: unknown): Promise<TemplateScope> {
  const roots = new Set<string>(readsAlso === undefined ? [] : rootsReadBy(readsAlso));
  for (const [, field] of templatedFields(step)) for (const root of rootsReadBy(field)) roots.add(root);
  const steps = { ...scope.steps };
  const resolved: TemplateScope = { ...scope, steps };
  await Promise.all(
    [...roots].map(async (root) => {
      if (root === 'input') resolved.input = await payloads.resolve(scope.input);
      else if (root.startsWith('steps.')) {
        const id = root.slice('steps.'.length);
        if (Object.hasOwn(steps, id)) steps[id] = { output: await payloads.resolve(steps[id].output) };
      }
    }),
  );
  return resolved;
}
