/** Compiled machines, reused: compiling is the costly part of starting an actor. */
import type { Definition } from './definition.js';
import { compileWorkflow, type WorkflowMachine } from './workflowMachine.js';

const byObject = new WeakMap<Definition, WorkflowMachine>();
const byContent = new Map<string, WorkflowMachine>();
const MAX_BY_CONTENT = 256;

/** By definition object: the hot path, where one definition object starts many executions. */
export function compileCached(def: Definition): WorkflowMachine {
  let m = byObject.get(def);
  if (!m) byObject.set(def, (m = compileByContent(def)));
  return m;
}

/** By content: definitions read back from the log or a snapshot are new objects each time. */
export function compileByContent(def: Definition): WorkflowMachine {
  const key = JSON.stringify(def);
  let m = byContent.get(key);
  if (!m) {
    if (byContent.size >= MAX_BY_CONTENT) byContent.delete(byContent.keys().next().value!);
    byContent.set(key, (m = compileWorkflow(def)));
  }
  byObject.set(def, m);
  return m;
}
