/** Compiled machines, reused: compiling is the costly part of starting an actor. */
import type { Definition } from './definition.js';
import { compileWorkflow, type WorkflowMachine } from './workflowMachine.js';

const byObject = new WeakMap<Definition, WorkflowMachine>();
const byContent = new Map<string, { machine: WorkflowMachine; steps: number }>();
const MAX_BY_CONTENT = 256;
/**
 * A compiled machine costs memory in proportion to its steps (state nodes, transitions): the
 * cache is bounded by steps as well as by entries, or 256 long definitions would hold gigabytes.
 */
const MAX_CACHED_STEPS = 10_000;
let cachedSteps = 0;

/** By definition object: the hot path, where one definition object starts many executions. */
export function compileCached(def: Definition): WorkflowMachine {
  let m = byObject.get(def);
  if (!m) byObject.set(def, (m = compileByContent(def)));
  return m;
}

/** By content: definitions read back from the log or a snapshot are new objects each time. */
export function compileByContent(def: Definition): WorkflowMachine {
  const key = JSON.stringify(def);
  let entry = byContent.get(key);
  if (!entry) {
    entry = { machine: compileWorkflow(def), steps: def.steps.length };
    while (byContent.size > 0 && (byContent.size >= MAX_BY_CONTENT || cachedSteps + entry.steps > MAX_CACHED_STEPS)) {
      const [oldest, old] = byContent.entries().next().value!;
      byContent.delete(oldest);
      cachedSteps -= old.steps;
    }
    byContent.set(key, entry);
    cachedSteps += entry.steps;
  }
  byObject.set(def, entry.machine);
  return entry.machine;
}
