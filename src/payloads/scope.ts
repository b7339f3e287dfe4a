/**
 * Templates over values kept by reference. The machine's context holds refs
 * (it stays pure and its snapshots small); when the runner builds a step's
 * template scope, it fetches the values the step's templates actually read,
 * and only those.
 */
import type { Step } from '../../machines/definition.js';
import { collectTemplates, type TemplateScope } from '../definition/templates.js';
import { isPayloadRef } from './refs.js';
import type { PayloadStore } from './store.js';

/** Whether any value a template could read (the input, a step output) is a ref. */
/** Whether a step's scope (its input and the outputs it names) holds a value kept by reference. */
export function scopeHoldsRefs(scope: TemplateScope): boolean {
  if (isPayloadRef(scope.input)) return true;
  for (const id in scope.steps) if (isPayloadRef(scope.steps[id].output)) return true;
  return false;
}

/** The fields of a step that hold templates (those the runner resolves), and its `when`. */
function templatedFields(step: Step): unknown[] {
  const fields: unknown[] = [step.when];
  switch (step.type) {
    case 'transform': fields.push(step.value); break;
    case 'http': fields.push(step.request); break;
    case 'llm': fields.push(step.prompt, step.model, step.system); break;
    case 'fail': fields.push(step.message); break;
    default: break;
  }
  return fields;
}

/** Replace, in a scope, the refs that the step's templates read with their values. */
export async function resolveScopeRefs(scope: TemplateScope, step: Step, payloads: PayloadStore): Promise<TemplateScope> {
  const roots = new Set<string>();
  for (const field of templatedFields(step)) {
    for (const ref of collectTemplates(field)) roots.add(ref.path[0] === 'steps' ? `steps.${ref.path[1]}` : ref.path[0]);
  }
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
