/**
 * Compiles a workflow definition into an XState v5 machine. Sequential steps
 * are states of `running`; a parallel group is a parallel state with one region
 * per step, whose onDone (the join) goes to the next stage.
 *
 * The machine only decides. It invokes nothing: the worker reads which steps
 * are `pending` / `backoff` in a snapshot, runs them, and sends their outcome
 * back as the next event. So `transition()` over the recorded events re-derives
 * every state without running a step (replay), and a snapshot rebuilt from the
 * log continues exactly where the log ends (resume).
 */
import { and, assign, not, setup, stateIn, type SnapshotFrom } from 'xstate';
import { eventSignalName, type Budget, type Definition, type Step } from './definition.js';
import type { ErrorInfo, ItemsAgain, OuterScope, ParentLink, StepStarted, Usage, WorkflowEvent } from './events.js';
import { canRetry } from './retry.js';
import { END_STATE, planStages, type Stage } from './stages.js';
import { emptyStepMap, stepMapDelete, stepMapGet, stepMapHas, stepMapSet, type StepMap } from './stepMap.js';
import { walkSteps } from './blocks.js';
import { BLOCK_END, type Compiler } from './containers/common.js';
import { switchNode } from './containers/switch.js';
import { parallelNode } from './containers/parallel.js';
import { graphNode } from './containers/graph.js';
import { loopNode } from './containers/loop.js';
import { mapNode, type MapProgress } from './containers/map.js';
import { workflowNode, type ChildRef } from './containers/workflow.js';
import { admitsExecutions, executionQueuedState, executionQueueTransitions, queuedState, toQueued, type QueuedExecution, type QueuedStep } from './queue.js';

export interface WorkflowContext {
  executionId: string;
  definition: Definition;
  input: unknown;
  /** Outputs of completed (or skipped, or failed-and-continued) steps. Read with stepMapGet & co. */
  outputs: StepMap<unknown>;
  /** Current attempt per started step (1-based). */
  attempts: StepMap<number>;
  /** Last error per step. */
  errors: StepMap<ErrorInfo>;
  /** Signals delivered before their step was waiting, by name. */
  signals: StepMap<unknown>;
  /**
   * Durable timers of started steps, by step: a sleep's wake time, a signal step's
   * timeout. Absent in snapshots taken before timers were recorded. Only waiting steps
   * have one, so a plain record stays small.
   */
  timers?: Record<string, StepTimer>;
  /** The iteration each loop is in, by loop id (absent in snapshots from before loops). */
  iterations?: StepMap<number>;
  /** The child execution each `workflow` step waits for, by step (absent before child workflows). */
  children?: StepMap<ChildRef>;
  /** Each map's progress, by map id (absent before maps). */
  maps?: StepMap<MapProgress>;
  /** A resume from a step inside a map's block: what the map takes when it begins again. */
  itemsAgain?: ItemsAgain;
  /** A child execution: the parent step it reports its end to. */
  parent?: ParentLink;
  /** A map item's child: its item, index and the outer values its block reads. */
  outer?: OuterScope;
  usage: Usage;
  budget?: Budget;
  /** Steps waiting for a concurrency or rate key, by step (machines/queue.ts). */
  queued?: Record<string, QueuedStep>;
  /** The execution holds its workflow-level keys, recorded by its ExecutionAdmitted. */
  admitted?: boolean;
  admittedKeys?: string[];
  /** The execution waits for its workflow-level keys. */
  executionQueued?: QueuedExecution;
  /** The execution's error, once ExecutionFailed. */
  error?: ErrorInfo;
  output?: unknown;
}

/** A step's timer as its StepStarted recorded it; it applies while that attempt waits. */
export interface StepTimer {
  /** ISO-8601: a sleep's `wakeAt` or a signal step's `deadline`. */
  at: string;
  attempt: number;
  /** A sleep's resolved duration. */
  durationMs?: number;
}

export interface WorkflowInput { executionId: string; definition: Definition }

export const ZERO_USAGE: Usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0 };

const workflowSetup = setup({
  types: {
    context: {} as WorkflowContext,
    events: {} as WorkflowEvent,
    input: {} as WorkflowInput,
  },
});

export type WorkflowMachine = ReturnType<typeof compileWorkflow>;
export type WorkflowSnapshot = SnapshotFrom<WorkflowMachine>;

type Ev = WorkflowEvent;
type Args = { context: WorkflowContext; event: Ev };

const forStep = (id: string) => ({ event }: Args) => 'stepId' in event && event.stepId === id;

const waitingStateId = (stepId: string) => `waiting:${stepId}`;

/**
 * A signal for a step that has not started waiting yet is buffered (as
 * Temporal buffers signals). The guard keeps a waiting step's own signal from
 * also being buffered: in a parallel state every region's transition is taken.
 */
function bufferSignalTransitions(definition: Definition) {
  return [...walkSteps(definition.steps)].map((v) => v.step)
    .filter((s) => s.type === 'signal' || s.type === 'waitForEvent')
    .map((s) => {
      const name = s.type === 'waitForEvent' ? eventSignalName(s.id) : (s as { name?: string }).name ?? s.id;
      return {
        guard: and([
          ({ context, event }: Args) => event.type === 'SignalReceived' && event.name === name && !stepMapHas(context.outputs, s.id) && !stepMapHas(context.signals, name),
          not(stateIn(`#${waitingStateId(s.id)}`)),
        ]),
        actions: assign(({ context, event }: Args) => ({ signals: stepMapSet(context.signals, name, (event as any).payload) })),
      };
    });
}

/**
 * A copy of `record` with `key` set. Not `{ ...record, [key]: value }`: V8 takes a slow path
 * for a key added after a spread, and these run on every transition.
 */
function withKey<T>(record: Record<string, T>, key: string, value: T): Record<string, T> {
  const copy = Object.assign({}, record);
  copy[key] = value;
  return copy;
}

function withoutKey<T>(record: Record<string, T>, key: string): Record<string, T> {
  const copy = Object.assign({}, record);
  delete copy[key];
  return copy;
}

const addUsage = (a: Usage, b?: Usage): Usage =>
  b ? { promptTokens: a.promptTokens + b.promptTokens, completionTokens: a.completionTokens + b.completionTokens, totalTokens: a.totalTokens + b.totalTokens } : a;

/** A leaf step's node: pending, running or waiting, backoff, done (final) or failed. */
function leafNode(step: Step) {
  const id = step.id;
  const signalName = step.type === 'signal' ? (step.name ?? step.id) : step.type === 'waitForEvent' ? eventSignalName(step.id) : undefined;
  const isSleep = step.type === 'sleep';
  const isStep = forStep(id);
  // A timer's event applies only to the attempt that is waiting: a late one for an earlier attempt is refused.
  const isWaitingAttempt = ({ context, event }: Args) => isStep({ event } as Args) && (event as { attempt?: number }).attempt === stepMapGet(context.attempts, id);

  const complete = assign(({ context, event }: Args) => {
    const e = event as Extract<Ev, { type: 'StepCompleted' }>;
    return { outputs: stepMapSet(context.outputs, id, e.output), usage: addUsage(context.usage, e.usage) };
  });
  const recordAttempt = assign(({ context, event }: Args) => ({
    attempts: stepMapSet(context.attempts, id, (event as Extract<Ev, { type: 'StepStarted' }>).attempt),
  }));
  const recordTimer = assign(({ context, event }: Args) => {
    const e = event as StepStarted;
    const at = e.wakeAt ?? e.deadline;
    const timers = context.timers ?? {};
    if (at === undefined) return Object.hasOwn(timers, id) ? { timers: withoutKey(timers, id) } : {};
    return { timers: withKey<StepTimer>(timers, id, { at, attempt: e.attempt, ...(e.durationMs !== undefined ? { durationMs: e.durationMs } : {}) }) };
  });
  // A failed attempt's tokens were spent all the same: they count in the execution's usage.
  const recordError = assign(({ context, event }: Args) => {
    const e = event as Extract<Ev, { type: 'StepFailed' }>;
    return { errors: stepMapSet(context.errors, id, e.error), usage: addUsage(context.usage, e.usage) };
  });
  // onError: "continue" — the step counts as done; its output carries the error.
  const continueWithError = assign(({ context, event }: Args) => {
    const e = event as Extract<Ev, { type: 'StepFailed' }>;
    return { outputs: stepMapSet(context.outputs, id, { error: e.error }), errors: stepMapSet(context.errors, id, e.error), usage: addUsage(context.usage, e.usage) };
  });

  const onFailed = [
    {
      guard: ({ event }: Args) => isStep({ event } as Args) && canRetry(step.retry, (event as any).attempt, (event as any).error),
      target: 'backoff',
      actions: recordError,
    },
    { guard: ({ event }: Args) => isStep({ event } as Args) && step.onError === 'continue', target: 'done', actions: continueWithError },
    { guard: isStep, target: 'failed', actions: recordError },
  ];
  const completed = { guard: isStep, target: 'done', actions: complete };

  const startWaiting = { guard: isStep, target: 'waiting', actions: [recordAttempt, recordTimer] };
  // A sleep whose StepStarted has no wakeAt was recorded before sleeps were durable timers: it ran in process.
  const startSleep = [{ guard: ({ event }: Args) => isStep({ event } as Args) && (event as StepStarted).wakeAt !== undefined, target: 'waiting', actions: [recordAttempt, recordTimer] }, { guard: isStep, target: 'running', actions: recordAttempt }];
  const started = signalName
    ? [
        // A signal that arrived early completes the step as soon as it starts.
        {
          guard: ({ context, event }: Args) => isStep({ event } as Args) && stepMapHas(context.signals, signalName),
          target: 'done',
          actions: [
            recordAttempt,
            assign(({ context }: Args) => {
              const payload = stepMapGet(context.signals, signalName);
              return { outputs: stepMapSet(context.outputs, id, payload), signals: stepMapDelete(context.signals, signalName) };
            }),
          ],
        },
        startWaiting,
      ]
    : isSleep ? startSleep : [{ guard: isStep, target: 'running', actions: recordAttempt }];

  const active = { on: { StepCompleted: completed, StepFailed: onFailed } };
  return {
    initial: 'pending',
    states: {
      pending: {
        on: {
          StepQueued: toQueued(id),
          StepStarted: started,
          // skipped (when = false), or failed before it could start (template, budget)
          StepCompleted: { guard: ({ event }: Args) => isStep({ event } as Args) && (event as any).skipped === true, target: 'done', actions: complete },
          StepFailed: onFailed,
        },
      },
      ...(signalName
        ? {
            waiting: {
              id: waitingStateId(id),
              on: {
                SignalReceived: {
                  guard: ({ event }: Args) => (event as any).name === signalName,
                  target: 'done',
                  actions: assign(({ context, event }: Args) => ({ outputs: stepMapSet(context.outputs, id, (event as any).payload) })),
                },
                // the timeout
                StepFailed: onFailed.map((t) => ({ ...t, guard: (args: Args) => t.guard(args) && isWaitingAttempt(args) })),
              },
            },
          }
        : { running: active }),
      ...(isSleep ? { waiting: { on: { StepCompleted: { guard: isWaitingAttempt, target: 'done', actions: complete } } } } : {}),
      backoff: { on: { StepQueued: toQueued(id), StepStarted: signalName ? startWaiting : isSleep ? startSleep : { guard: isStep, target: 'running', actions: recordAttempt } } },
      queued: queuedState(id, started, onFailed),
      done: { type: 'final' as const },
      failed: {},
    },
  };
}

/** Any step's node: a container's (machines/containers) or a leaf's. */
function stepNode(step: Step): any {
  switch (step.type) {
    case 'switch': return switchNode(step, compiler);
    case 'parallel': return parallelNode(step, compiler);
    case 'graph': return graphNode(step, compiler);
    case 'loop': return loopNode(step, compiler);
    case 'map': return mapNode(step);
    case 'workflow': return workflowNode(step);
    default: return leafNode(step);
  }
}

/** A block: its steps in order, as sibling states; its final state once the last is done. */
function blockNode(steps: Step[]) {
  const states: Record<string, unknown> = {};
  steps.forEach((s, i) => { states[s.id] = { ...stepNode(s), onDone: steps[i + 1]?.id ?? BLOCK_END }; });
  states[BLOCK_END] = { type: 'final' };
  return { initial: steps[0]?.id ?? BLOCK_END, states };
}

const compiler: Compiler = { node: stepNode, block: blockNode };

function stageNode(stage: Stage, next: string) {
  if (!stage.parallel) return { ...stepNode(stage.steps[0]), onDone: next };
  return {
    type: 'parallel' as const,
    states: Object.fromEntries(stage.steps.map((s) => [s.id, stepNode(s)])),
    onDone: next,
  };
}

/** The machine for one definition. Compile once per definition version and reuse. */
export function compileWorkflow(definition: Definition) {
  const stages = planStages(definition);
  const runningStates: Record<string, unknown> = {};
  stages.forEach((stage, i) => {
    runningStates[stage.key] = stageNode(stage, i + 1 < stages.length ? stages[i + 1].key : END_STATE);
  });
  runningStates[END_STATE] = {
    on: {
      ExecutionCompleted: {
        target: '#workflow.completed',
        actions: assign(({ event }: Args) => ({ output: (event as any).output })),
      },
    },
  };

  return workflowSetup.createMachine({
    id: 'workflow',
    initial: 'pending',
    context: ({ input }) => ({
      executionId: input.executionId,
      definition: input.definition,
      input: undefined,
      outputs: emptyStepMap(),
      attempts: emptyStepMap(),
      errors: emptyStepMap(),
      signals: emptyStepMap(),
      timers: {},
      iterations: emptyStepMap(),
      usage: ZERO_USAGE,
    }),
    states: {
      pending: {
        on: {
          ExecutionStarted: {
            target: 'running',
            actions: assign(({ event }) => (event.type === 'ExecutionStarted'
              ? { input: event.input, budget: event.budget ?? event.definition.budget, ...(event.parent ? { parent: event.parent } : {}), ...(event.outer ? { outer: event.outer } : {}) }
              : {})),
          },
        },
      },
      running: {
        initial: stages[0].key,
        on: {
          ExecutionFailed: { target: 'failed', actions: assign(({ event }) => (event.type === 'ExecutionFailed' ? { error: event.error } : {})) },
          ExecutionCancelled: 'cancelled',
          SignalReceived: bufferSignalTransitions(definition) as any,
          ...((admitsExecutions(definition) ? executionQueueTransitions() : {}) as any),
        },
        states: runningStates as any,
      },
      ...((admitsExecutions(definition) ? { queued: executionQueuedState() } : {}) as any),
      completed: { type: 'final' },
      failed: {},
      cancelled: {},
    },
  });
}
