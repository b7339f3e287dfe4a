/**
 * `workflow`: a child execution of a registered workflow. Its StepStarted
 * names the child (`child`, `version`); the parent then waits (WAITING: it
 * may be passivated) until the child's end is recorded here as the step's
 * StepCompleted (its output and token usage) or StepFailed, each naming the
 * child, so a late or repeated report of an earlier attempt's child is refused.
 */
import { assign } from 'xstate';
import type { WorkflowStep } from '../definition.js';
import type { StepCompleted, StepFailed, StepStarted, Usage } from '../events.js';
import { canRetry } from '../retry.js';
import { emptyStepMap, stepMapGet, stepMapSet } from '../stepMap.js';
import { isStepEvent, type Args } from './common.js';

/** The child a `workflow` step waits for: its execution id and the registered version it runs. */
export interface ChildRef {
  id: string;
  version?: number;
  /** Resumed from a step of its own (the parent was resumed from it) while its log is at `after`, rather than started. */
  again?: { fromStep: string; after: number };
}
export const childOf = (ctx: Args['context'], stepId: string): ChildRef | undefined => stepMapGet(ctx.children ?? emptyStepMap<ChildRef>(), stepId);

const addUsage = (a: Usage, b?: Usage): Usage =>
  b ? { promptTokens: a.promptTokens + b.promptTokens, completionTokens: a.completionTokens + b.completionTokens, totalTokens: a.totalTokens + b.totalTokens } : a;

export function workflowNode(step: WorkflowStep) {
  const id = step.id;
  const isStep = isStepEvent(id);
  const fromChild = (a: Args) => isStep(a) && (a.event as StepCompleted).child !== undefined && (a.event as StepCompleted).child === childOf(a.context, id)?.id;
  const againOf = (ctx: Args['context']) => (ctx.itemsAgain?.stepId === id ? ctx.itemsAgain : undefined);
  const start = assign(({ context, event }: Args) => {
    const e = event as StepStarted;
    const again = againOf(context);
    const resumed = again?.child?.child === e.child ? { again: { fromStep: again!.fromStep, after: again!.child!.after } } : {};
    const ref: ChildRef = { id: e.child!, ...(e.version !== undefined ? { version: e.version } : {}), ...resumed };
    return { attempts: stepMapSet(context.attempts, id, e.attempt), children: stepMapSet(context.children ?? emptyStepMap<ChildRef>(), id, ref), ...(again ? { itemsAgain: undefined } : {}) };
  });
  const complete = assign(({ context, event }: Args) => {
    const e = event as StepCompleted;
    return { outputs: stepMapSet(context.outputs, id, e.output), usage: addUsage(context.usage, e.usage) };
  });
  const recordError = assign(({ context, event }: Args) => ({ errors: stepMapSet(context.errors, id, (event as StepFailed).error) }));
  const continueWithError = assign(({ context, event }: Args) => ({
    outputs: stepMapSet(context.outputs, id, { error: (event as StepFailed).error }),
    errors: stepMapSet(context.errors, id, (event as StepFailed).error),
  }));
  const onFailed = (guard: (a: Args) => boolean) => [
    { guard: (a: Args) => guard(a) && canRetry(step.retry, (a.event as StepFailed).attempt, (a.event as StepFailed).error), target: 'backoff', actions: recordError },
    { guard: (a: Args) => guard(a) && step.onError === 'continue', target: 'done', actions: continueWithError },
    { guard, target: 'failed', actions: recordError },
  ];
  // Resumed from a step of its child: that same child is resumed, not a new one started.
  const startsChild = (a: Args) => {
    const { child } = a.event as StepStarted;
    const again = againOf(a.context)?.child;
    return isStep(a) && child !== undefined && (again === undefined || again.child === child);
  };
  const started = { guard: startsChild, target: 'waiting', actions: start };
  return {
    initial: 'pending',
    states: {
      pending: {
        on: {
          StepStarted: started,
          StepCompleted: { guard: (a: Args) => isStep(a) && (a.event as StepCompleted).skipped === true, target: 'done', actions: complete },
          // failed before a child started (its workflow is not registered, its input does not resolve)
          StepFailed: onFailed(isStep),
        },
      },
      waiting: { on: { StepCompleted: { guard: fromChild, target: 'done', actions: complete }, StepFailed: onFailed(fromChild) } },
      backoff: { on: { StepStarted: started } },
      done: { type: 'final' as const },
      failed: {},
    },
  };
}
