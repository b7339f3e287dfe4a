/** One compiled machine per definition object: compiling is the costly part of starting an actor. */
import type { Definition } from '../src/definition/schema.js';
import { compileWorkflow, type WorkflowMachine } from './workflowMachine.js';

const machines = new WeakMap<Definition, WorkflowMachine>();

export function compileCached(def: Definition): WorkflowMachine {
  let m = machines.get(def);
  if (!m) machines.set(def, (m = compileWorkflow(def)));
  return m;
}
