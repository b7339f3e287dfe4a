/**
 * What every container node shares. A container is a compound state:
 * `pending` until the worker records its StepStarted (carrying what it
 * decided: the case, the iteration), its block(s) while they run, `closing`
 * once they are done (the worker then records its StepCompleted with the
 * output the machine computed), `done`; a StepFailed for the container (an
 * inner step failed, or a decision did) ends it `failed`, or `done` with
 * `{error}` under `onError: "continue"`. Pure.
 */
import { assign } from 'xstate';
import type { Step } from '../definition.js';
import type { StepCompleted, StepFailed, WorkflowEvent } from '../events.js';
import { stepMapSet } from '../stepMap.js';
import type { WorkflowContext } from '../workflowMachine.js';

export type Args = { context: WorkflowContext; event: WorkflowEvent };
/** Compiles a step (leaf or container) and a block; given by the compiler so containers nest. */
export interface Compiler {
  node(step: Step): Record<string, unknown>;
  block(steps: Step[]): Record<string, unknown>;
}

/** The final state of a block: every step of it done. */
export const BLOCK_END = '(end)';

export const isStepEvent = (id: string) => ({ event }: Args) => 'stepId' in event && event.stepId === id;

/** The block's last step's output (null for an empty block). */
export const lastOutput = (context: WorkflowContext, steps: Step[], get: (id: string) => unknown) => (steps.length ? (get(steps[steps.length - 1].id) ?? null) : null);

/** Sets the container's output in the context, as its block ends. */
export const setOutput = (id: string, compute: (context: WorkflowContext) => unknown) =>
  assign(({ context }: Args) => ({ outputs: stepMapSet(context.outputs, id, compute(context)) }));

/** The states and transitions every container has, around its own `inner` states. */
export function containerNode(step: Step, pendingOn: Record<string, unknown>, inner: Record<string, unknown>): Record<string, unknown> {
  const id = step.id;
  const isStep = isStepEvent(id);
  const complete = assign(({ context, event }: Args) => ({ outputs: stepMapSet(context.outputs, id, (event as StepCompleted).output) }));
  const recordError = assign(({ context, event }: Args) => ({ errors: stepMapSet(context.errors, id, (event as StepFailed).error) }));
  const continueWithError = assign(({ context, event }: Args) => ({
    outputs: stepMapSet(context.outputs, id, { error: (event as StepFailed).error }),
    errors: stepMapSet(context.errors, id, (event as StepFailed).error),
  }));
  return {
    initial: 'pending',
    on: {
      StepFailed: [
        { guard: (a: Args) => isStep(a) && step.onError === 'continue', target: '.done', actions: continueWithError },
        { guard: isStep, target: '.failed', actions: recordError },
      ],
    },
    states: {
      pending: {
        on: {
          ...pendingOn,
          // skipped (its `when` was false)
          StepCompleted: { guard: (a: Args) => isStep(a) && (a.event as StepCompleted).skipped === true, target: 'done', actions: complete },
        },
      },
      ...inner,
      closing: { on: { StepCompleted: { guard: isStep, target: 'done', actions: complete } } },
      done: { type: 'final' },
      failed: {},
    },
  };
}
