/**
 * Which earlier steps a step's templates and expressions read. The runner
 * gives a step only those outputs, not the whole map: building a scope of
 * every output for every step made a run quadratic in the number of steps.
 */
import type { Step } from '../../machines/definition.js';
import { templatedFields } from './references.js';
import { rootsReadBy } from './resolve.js';

const cache = new WeakMap<Step, string[]>();

/** Ids of the steps whose output the step's templates (`{{steps.<id>.output…}}`) and expressions refer to. */
export function stepsReferencedBy(step: Step): string[] {
  let ids = cache.get(step);
  if (!ids) {
    const found = new Set<string>();
    // A validated step: its templates are well-formed and its expressions parse. Only templated
    // fields count: an llm step's `schema` is sent as written (its descriptions may show braces).
    for (const [, value] of templatedFields(step)) for (const root of rootsReadBy(value)) if (root.startsWith('steps.')) found.add(root.slice('steps.'.length));
    cache.set(step, (ids = [...found]));
  }
  return ids;
}
