/**
 * Which earlier steps a step's templates read. The runner gives a step's
 * templates only those outputs, not the whole map: building a scope of every
 * output for every step made a run quadratic in the number of steps.
 */
import type { Step } from '../../machines/definition.js';
import { collectTemplates } from './templates.js';

const cache = new WeakMap<Step, string[]>();

/** Ids of the steps whose output the step's templates (`{{steps.<id>.output…}}`) refer to. */
export function stepsReferencedBy(step: Step): string[] {
  let ids = cache.get(step);
  if (!ids) {
    const found = new Set<string>();
    // A validated step: its templates are well-formed, and only templated fields hold `{{…}}`,
    // except an llm step's `schema`, sent as written (its descriptions may show braces).
    const { schema: _sentAsWritten, ...templated } = step as Step & { schema?: unknown };
    for (const ref of collectTemplates(templated)) if (ref.path[0] === 'steps' && ref.path[1] !== undefined) found.add(ref.path[1]);
    cache.set(step, (ids = [...found]));
  }
  return ids;
}
