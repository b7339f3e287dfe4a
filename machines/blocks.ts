/**
 * The tree of a definition: containers hold blocks, blocks hold steps. Pure
 * helpers to list a container's blocks and to walk every step with its path
 * (`steps[3].cases[1].steps[0]`), shared by validation, the compiler and the
 * worker.
 */
import { isContainer, type Definition, type Step } from './definition.js';

export interface Block {
  /** What the block is within its container: `case:0`, `default`, `branch:security`, `body`. */
  key: string;
  /** Its path relative to the container, e.g. `cases[0].steps`, `branches.security`. */
  path: string;
  steps: Step[];
}

/** The blocks a step holds, in the order they are listed (none for a leaf step). */
export function blocksOf(step: Step): Block[] {
  if (!isContainer(step)) return [];
  switch (step.type) {
    case 'switch':
      return [
        ...step.cases.map((c, i) => ({ key: `case:${i}`, path: `cases[${i}].steps`, steps: c.steps })),
        ...(step.default ? [{ key: 'default', path: 'default', steps: step.default }] : []),
      ];
    case 'parallel':
      return Object.entries(step.branches).map(([name, steps]) => ({ key: `branch:${name}`, path: `branches.${name}`, steps }));
    default:
      return [{ key: 'body', path: 'steps', steps: step.steps }];
  }
}

export interface Visit {
  step: Step;
  /** e.g. `steps[3].cases[1].steps[0]`. */
  path: string;
  /** Containers enclosing the step, outermost first. */
  ancestors: Step[];
}

/** Every step of the tree, parents before their blocks' steps, in listed order. */
export function* walkSteps(steps: Step[], base = 'steps', ancestors: Step[] = []): Generator<Visit> {
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i];
    const path = `${base}[${i}]`;
    yield { step, path, ancestors };
    for (const b of blocksOf(step)) yield* walkSteps(b.steps, `${path}.${b.path}`, [...ancestors, step]);
  }
}

const indexCache = new WeakMap<Definition, Map<string, Visit>>();

/** Every step of a definition by id, with its path and enclosing containers. Computed once per definition. */
export function stepIndex(def: Definition): Map<string, Visit> {
  let index = indexCache.get(def);
  if (!index) {
    index = new Map();
    for (const v of walkSteps(def.steps)) if (!index.has(v.step.id)) index.set(v.step.id, v);
    indexCache.set(def, index);
  }
  return index;
}

/** A step anywhere in the tree, by id. */
export const findStep = (def: Definition, id: string): Step | undefined => stepIndex(def).get(id)?.step;

/** Whether any step of the definition is a container or a child workflow (the second edition's types). */
export const usesContainers = (def: Definition): boolean => def.steps.some((s) => isContainer(s) || s.type === 'workflow');
