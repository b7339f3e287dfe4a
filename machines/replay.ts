/**
 * Folding recorded events through the machine with XState's pure
 * `transition`: the state after every record is re-derived, never by running
 * a step. Used to rebuild an actor (status, resume) and to audit (replay).
 */
import { createActor, initialTransition, type AnyActorScope } from 'xstate';
import type { Definition } from './definition.js';
import { compileCached } from './cache.js';
import type { WorkflowEvent } from './events.js';
import { resumeSnapshot } from './resume.js';
import type { WorkflowMachine, WorkflowSnapshot } from './workflowMachine.js';

export interface RecordedEvent {
  seq: number;
  event: WorkflowEvent;
  /** The state value the writer recorded. */
  state?: unknown;
}

export interface StateMismatch { seq: number; type: string; recorded: unknown; recomputed: unknown }

export interface FoldResult {
  snapshot: WorkflowSnapshot;
  /** Snapshots after each checkpoint record, by sequence (what resume starts from). */
  checkpoints: Map<number, WorkflowSnapshot>;
  mismatches: StateMismatch[];
  lastSeq: number;
}

/** Records that mark a step boundary: resuming there re-runs nothing that had completed. */
export function isCheckpointEvent(e: WorkflowEvent): boolean {
  return e.type === 'ExecutionStarted' || e.type === 'StepCompleted' || e.type === 'SignalReceived' || e.type === 'ExecutionResumed';
}

const initialByDefinition = new WeakMap<Definition, WorkflowSnapshot>();

/** The snapshot before ExecutionStarted. The initial transition is computed once per definition. */
export function initialSnapshot(executionId: string, definition: Definition): WorkflowSnapshot {
  const machine = compileCached(definition);
  let base = initialByDefinition.get(definition);
  if (!base) initialByDefinition.set(definition, (base = initialTransition(machine, { executionId, definition })[0]));
  return base.context.executionId === executionId ? base : machine.resolveState({ value: base.value, context: { ...base.context, executionId } });
}

/** Apply one event: a machine transition, or the rebuild an ExecutionResumed stands for. */
export function applyEvent(snapshot: WorkflowSnapshot, event: WorkflowEvent, checkpoints: Map<number, WorkflowSnapshot>, prevSeq: number): WorkflowSnapshot {
  if (event.type === 'ExecutionResumed') {
    const at = event.checkpointSeq === prevSeq ? snapshot : checkpoints.get(event.checkpointSeq);
    if (!at) throw new Error(`ExecutionResumed refers to sequence ${event.checkpointSeq}, which is not a checkpoint of this log`);
    return resumeSnapshot(at, {
      definition: event.definition ?? snapshot.context.definition,
      fromStep: event.fromStep,
      budget: event.budget,
      items: event.items,
      recovery: event.reason === 'recovery',
    });
  }
  const machine = compileCached(snapshot.context.definition);
  return machine.transition(snapshot, event, inertScope(machine, snapshot));
}

/**
 * One inert actor scope per machine. XState's `transition()` builds a new actor for every call,
 * and with it the machine's initial context: more than half of the cost of a fold, which made
 * resuming a short history (folded whole: it has no snapshot yet) slower than a long one.
 * The workflow machine's actions are all assigns, so a scope that executes nothing is enough.
 */
const scopes = new WeakMap<WorkflowMachine, AnyActorScope>();
function inertScope(machine: WorkflowMachine, snapshot: WorkflowSnapshot): AnyActorScope {
  let scope = scopes.get(machine);
  if (!scope) {
    const self = createActor(machine, { input: { executionId: snapshot.context.executionId, definition: snapshot.context.definition } });
    const none = () => undefined;
    scope = { self, id: '', sessionId: '', system: self.system, defer: none, logger: none, stopChild: none, emit: none, actionExecutor: none } as unknown as AnyActorScope;
    scopes.set(machine, scope);
  }
  return scope;
}

export function foldEvents(executionId: string, records: RecordedEvent[], options: { upToSeq?: number } = {}): FoldResult {
  const first = records[0]?.event;
  if (!first || first.type !== 'ExecutionStarted') throw new Error(`the log of ${executionId} does not begin with ExecutionStarted`);
  let snapshot = initialSnapshot(executionId, first.definition);
  const checkpoints = new Map<number, WorkflowSnapshot>();
  const mismatches: StateMismatch[] = [];
  let lastSeq = 0;
  for (const r of records) {
    if (options.upToSeq !== undefined && r.seq > options.upToSeq) break;
    snapshot = applyEvent(snapshot, r.event, checkpoints, lastSeq);
    if (isCheckpointEvent(r.event)) checkpoints.set(r.seq, snapshot);
    if (r.state !== undefined && !sameValue(r.state, snapshot.value)) {
      mismatches.push({ seq: r.seq, type: r.event.type, recorded: r.state, recomputed: snapshot.value });
    }
    lastSeq = r.seq;
  }
  return { snapshot, checkpoints, mismatches, lastSeq };
}

function sameValue(a: unknown, b: unknown): boolean {
  return JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
}
function sortKeys(v: unknown): unknown {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
}
