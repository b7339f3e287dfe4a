/**
 * The queued phase (concurrency and rate keys, src/concurrency): a step over
 * a limit waits in `queued` (recorded by StepQueued) until the worker records
 * its StepStarted; an execution over a workflow-level limit waits in the
 * top-level `queued` state until ExecutionAdmitted. The machine only keeps what
 * the records say (the keys, since when, a rate limit's reserved time), so
 * whoever hosts the execution later re-admits it from the log alone. Pure.
 */
import { assign } from 'xstate';
import type { Definition } from './definition.js';
import type { StepQueued, WorkflowEvent } from './events.js';
import { stepMapGet, stepMapSet, stepMapSize, type StepMap } from './stepMap.js';

export interface QueuedExecution { keys: string[]; since: string; reason: 'rate' | 'concurrency'; until?: string }

const recordExecutionQueued = assign(({ event }: Args) => {
  const e = event as Extract<WorkflowEvent, { type: 'ExecutionQueued' }>;
  return { executionQueued: { keys: e.keys, since: e.since, reason: e.reason, ...(e.until !== undefined ? { until: e.until } : {}) } };
});
const recordAdmitted = assign(({ event }: Args) => ({ admitted: true, admittedKeys: (event as Extract<WorkflowEvent, { type: 'ExecutionAdmitted' }>).keys, executionQueued: undefined }));

/** A queued step, as its StepQueued recorded it. */
export interface QueuedStep {
  attempt: number;
  keys: string[];
  since: string;
  reason: 'rate' | 'concurrency';
  /** A rate limit's reserved start time: the slot is taken, the step starts once it is reached. */
  until?: string;
}

interface QueueContext {
  queued?: Record<string, QueuedStep>;
  attempts: StepMap<number>;
  /** The execution holds its workflow-level keys (ExecutionAdmitted). */
  admitted?: boolean;
  /** The keys its ExecutionAdmitted recorded (its tokens count against its rate key). */
  admittedKeys?: string[];
  /** Since when, on which keys and why the execution waits (ExecutionQueued). */
  executionQueued?: QueuedExecution;
}
type Args = { context: QueueContext; event: WorkflowEvent };

/** The queued entry of the step's current attempt, if it is queued. */
export function queuedStep(context: QueueContext, stepId: string): QueuedStep | undefined {
  const q = context.queued?.[stepId];
  return q && q.attempt === stepMapGet(context.attempts, stepId) ? q : undefined;
}

/** Record a StepQueued: the attempt, and the entry (a later StepQueued of the same attempt replaces it). */
export const recordQueued = (stepId: string) => assign(({ context, event }: Args) => {
  const e = event as StepQueued;
  const entry: QueuedStep = { attempt: e.attempt, keys: e.keys, since: e.since, reason: e.reason, ...(e.until !== undefined ? { until: e.until } : {}) };
  return { attempts: stepMapSet(context.attempts, stepId, e.attempt), queued: { ...context.queued, [stepId]: entry } };
});

/** The step left the queue: its entry goes. */
export const dropQueued = (stepId: string) => assign(({ context }: Args) => {
  if (!context.queued || !Object.hasOwn(context.queued, stepId)) return {};
  const queued = { ...context.queued };
  delete queued[stepId];
  return { queued };
});

/** A leaf's `queued` state: its StepStarted transitions (those of `pending`), each also dropping the entry. */
export function queuedState(stepId: string, started: unknown, onFailed: unknown) {
  const withDrop = (t: { actions?: unknown }) => ({ ...t, actions: [...(Array.isArray(t.actions) ? t.actions : t.actions ? [t.actions] : []), dropQueued(stepId)] });
  const starts = (Array.isArray(started) ? started : [started]) as { actions?: unknown }[];
  const isStep = ({ event }: Args) => 'stepId' in event && event.stepId === stepId;
  return {
    on: {
      StepStarted: starts.map(withDrop),
      // Queued again (a rate limit's time reached, then a concurrency key full).
      StepQueued: { guard: isStep, target: 'queued', reenter: false, actions: recordQueued(stepId) },
      StepFailed: (onFailed as { actions?: unknown }[]).map(withDrop),
    },
  };
}

/** `pending` and `backoff` go to `queued` on the step's StepQueued. */
export const toQueued = (stepId: string) => ({
  guard: ({ event }: Args) => event.type === 'StepQueued' && event.stepId === stepId,
  target: 'queued',
  actions: recordQueued(stepId),
});

/** A workflow with its own keys: its executions are admitted (or queued) before their first step. */
export const admitsExecutions = (def: Definition): boolean => def.concurrency !== undefined || def.rateLimit !== undefined;

/** Transitions of `running` for a workflow-level limit: queued before any step started, or admitted. */
export function executionQueueTransitions() {
  const nothingStarted = ({ context }: Args) => !context.admitted && stepMapSize(context.attempts) === 0;
  return {
    ExecutionQueued: { guard: nothingStarted, target: '#workflow.queued', actions: recordExecutionQueued },
    ExecutionAdmitted: { guard: ({ context }: Args) => !context.admitted, actions: recordAdmitted },
  };
}

/**
 * The top-level `queued` state: admitted, it runs from its first step; queued again (its rate
 * time came, then a concurrency key was full); it may be cancelled while it waits.
 */
export function executionQueuedState() {
  return {
    on: {
      ExecutionAdmitted: { target: 'running', actions: recordAdmitted },
      ExecutionQueued: { actions: recordExecutionQueued },
      ExecutionCancelled: 'cancelled',
    },
  };
}
