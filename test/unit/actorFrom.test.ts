/**
 * machines/actor.ts: a runner's actor made from a live snapshot takes it as it
 * is, and from then on transitions exactly as one restored the long way
 * (persisted, then revived); a snapshot of another compiled machine is revived.
 */
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import { actorFrom } from '../../machines/actor.js';
import { applyEvent, compileWorkflow, initialSnapshot, type WorkflowEvent, type WorkflowSnapshot } from '../../machines/index.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { plainContext } from '../support/context.js';

const fork = validateDefinition({
  id: 'actor-from',
  steps: ['A', 'B', 'C', 'D'].map((id) => ({ id, type: 'transform', value: id })),
  parallel: [['B', 'C']],
});
const events: WorkflowEvent[] = [
  { type: 'ExecutionStarted', definition: fork, input: {} },
  { type: 'StepStarted', stepId: 'A', attempt: 1 },
  { type: 'StepCompleted', stepId: 'A', attempt: 1, output: 'a' },
  { type: 'StepStarted', stepId: 'B', attempt: 1 },
  { type: 'StepStarted', stepId: 'C', attempt: 1 },
  { type: 'StepCompleted', stepId: 'C', attempt: 1, output: 'c' },
] as WorkflowEvent[];

/** The long way round: persisted, then restored by XState. */
function restored(snapshot: WorkflowSnapshot) {
  const machine = snapshot.machine as unknown as ReturnType<typeof compileWorkflow>;
  return createActor(machine, { snapshot: machine.getPersistedSnapshot(snapshot), input: { executionId: snapshot.context.executionId, definition: fork } }).start();
}

describe('actorFrom', () => {
  it('starts from the very snapshot it is given, and transitions as a restored actor does', () => {
    let snap = initialSnapshot('af-1', fork);
    for (const e of events.slice(0, 3)) snap = applyEvent(snap, e, new Map(), 0);
    const fast = actorFrom(snap);
    const slow = restored(snap);
    expect(fast.getSnapshot()).toBe(snap); // not persisted and revived: taken as it is
    expect(slow.getSnapshot()).not.toBe(snap);
    for (const e of events.slice(3)) {
      fast.send(e);
      slow.send(e);
      expect(fast.getSnapshot().value).toEqual(slow.getSnapshot().value);
      expect(plainContext(fast.getSnapshot().context)).toEqual(plainContext(slow.getSnapshot().context));
    }
    expect(fast.getSnapshot().value).toMatchObject({ running: expect.anything() });
  });

  it('revives a snapshot of another compiled machine (one compiled again) in the cached one', () => {
    const other = compileWorkflow(fork);
    const initial = createActor(other, { input: { executionId: 'af-2', definition: fork } }).getSnapshot();
    const actor = actorFrom(initial);
    expect(actor.getSnapshot()).not.toBe(initial);
    expect(actor.getSnapshot().machine).not.toBe(other);
    actor.send(events[0]);
    expect(actor.getSnapshot().value).toEqual(applyEvent(initialSnapshot('af-2', fork), events[0], new Map(), 0).value);
  });
});
