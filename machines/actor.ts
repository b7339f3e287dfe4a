/**
 * The actor a runner hosts an execution in, made from a snapshot. XState's
 * `createActor(machine, { snapshot })` expects a persisted snapshot, so the
 * usual way round is `getPersistedSnapshot` then `restoreSnapshot`: both walk
 * the whole context (the definition included) looking for actor references,
 * and the restore recomputes the active state nodes. A runner's snapshot is a
 * live one of the same compiled machine (the initial one, a fold's, the last
 * actor's), with no child actors: it is taken as it is.
 */
import { createActor, type Actor } from 'xstate';
import { compileCached } from './cache.js';
import type { WorkflowMachine, WorkflowSnapshot } from './workflowMachine.js';

/** Per machine: the same logic, but restoring a live snapshot as it is. */
const asIs = new WeakMap<WorkflowMachine, WorkflowMachine>();

function restoringAsIs(machine: WorkflowMachine): WorkflowMachine {
  let logic = asIs.get(machine);
  if (!logic) {
    logic = Object.create(machine) as WorkflowMachine;
    logic.restoreSnapshot = ((snapshot: WorkflowSnapshot) => snapshot) as unknown as WorkflowMachine['restoreSnapshot'];
    asIs.set(machine, logic);
  }
  return logic;
}

export function actorFrom(snapshot: WorkflowSnapshot): Actor<WorkflowMachine> {
  const machine = compileCached(snapshot.context.definition);
  const input = { executionId: snapshot.context.executionId, definition: snapshot.context.definition };
  // Another machine's snapshot (one compiled again after the cache let it go) must be revived in this one.
  const live = snapshot.machine === machine && Object.keys(snapshot.children).length === 0;
  const actor = live
    ? createActor(restoringAsIs(machine), { snapshot: snapshot as never, input })
    : createActor(machine, { snapshot: machine.getPersistedSnapshot(snapshot), input });
  actor.start();
  return actor;
}
