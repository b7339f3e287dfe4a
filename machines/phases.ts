/**
 * Reading a workflow snapshot: the phase of every step and the execution's
 * status. The worker decides what to run from these. Pure.
 */
import type { Definition } from './definition.js';
import { END_STATE, planStages, type Stage } from './stages.js';
import type { WorkflowSnapshot } from './workflowMachine.js';

export type StepPhase = 'pending' | 'running' | 'waiting' | 'backoff' | 'done' | 'failed';
export const STATUSES = ['PENDING', 'RUNNING', 'WAITING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type ExecutionStatus = (typeof STATUSES)[number];

const stageCache = new WeakMap<Definition, Stage[]>();
export function stagesOf(def: Definition): Stage[] {
  let s = stageCache.get(def);
  if (!s) stageCache.set(def, (s = planStages(def)));
  return s;
}

type Value = string | { [k: string]: Value };

/** Phase of every step. Steps of earlier stages are done; of later stages, pending. */
export function stepPhases(snapshot: WorkflowSnapshot): Record<string, StepPhase> {
  const { definition, outputs, errors } = snapshot.context;
  const stages = stagesOf(definition);
  const value = snapshot.value as Value;
  const phases: Record<string, StepPhase> = {};
  const running = typeof value === 'object' ? (value as Record<string, Value>).running : undefined;

  if (running === undefined) {
    // not running (pending, completed, failed, cancelled): what the context says
    for (const s of definition.steps) phases[s.id] = Object.hasOwn(outputs, s.id) ? 'done' : Object.hasOwn(errors, s.id) && value === 'failed' ? 'failed' : 'pending';
    return phases;
  }
  const activeKey = typeof running === 'string' ? running : Object.keys(running)[0];
  const active = activeKey === END_STATE ? stages.length : stages.findIndex((st) => st.key === activeKey);
  stages.forEach((stage, i) => {
    for (const step of stage.steps) {
      if (i < active) phases[step.id] = 'done';
      else if (i > active) phases[step.id] = 'pending';
      else if (!stage.parallel) phases[step.id] = (running as Record<string, Value>)[activeKey] as StepPhase;
      else phases[step.id] = ((running as Record<string, Record<string, Value>>)[activeKey][step.id]) as StepPhase;
    }
  });
  return phases;
}

export function statusOf(snapshot: WorkflowSnapshot): ExecutionStatus {
  return inspectSnapshot(snapshot).status;
}

export interface SnapshotView {
  status: ExecutionStatus;
  phases: Record<string, StepPhase>;
  /** The stage being run, if any. */
  stage?: Stage;
}

/** Status, step phases and current stage, read from the state value once. */
export function inspectSnapshot(snapshot: WorkflowSnapshot): SnapshotView {
  const value = snapshot.value as Value;
  const phases = stepPhases(snapshot);
  if (typeof value === 'string') {
    const status: ExecutionStatus = value === 'pending' ? 'PENDING' : value === 'completed' ? 'COMPLETED' : value === 'failed' ? 'FAILED' : 'CANCELLED';
    return { status, phases };
  }
  const stage = activeStage(snapshot);
  // WAITING only when every step of the current stage is done or waiting for a signal:
  // a pending step there is about to start.
  const current = (stage?.steps ?? []).map((s) => phases[s.id]);
  const waiting = current.includes('waiting') && current.every((p) => p === 'waiting' || p === 'done');
  return { status: waiting ? 'WAITING' : 'RUNNING', phases, stage };
}

export const isTerminal = (s: ExecutionStatus) => s === 'COMPLETED' || s === 'FAILED' || s === 'CANCELLED';

/** The stage a step belongs to, or undefined. */
export function stageOfStep(def: Definition, stepId: string): { stage: Stage; index: number } | undefined {
  const stages = stagesOf(def);
  const index = stages.findIndex((s) => s.steps.some((st) => st.id === stepId));
  return index < 0 ? undefined : { stage: stages[index], index };
}

/** The stage being run (undefined when not running, or past the last stage). */
export function activeStage(snapshot: WorkflowSnapshot): Stage | undefined {
  const value = snapshot.value as Value;
  if (typeof value !== 'object') return undefined;
  const running = (value as Record<string, Value>).running;
  const key = typeof running === 'string' ? running : Object.keys(running)[0];
  return stagesOf(snapshot.context.definition).find((s) => s.key === key);
}

/** All steps done: the execution waits only for its ExecutionCompleted record. */
export function allStepsDone(snapshot: WorkflowSnapshot): boolean {
  const value = snapshot.value as Value;
  return typeof value === 'object' && (value as Record<string, Value>).running === END_STATE;
}

/** The output of the execution: the last stage's output (a map of outputs for a group). */
export function finalOutput(snapshot: WorkflowSnapshot): unknown {
  const stages = stagesOf(snapshot.context.definition);
  const last = stages[stages.length - 1];
  const { outputs } = snapshot.context;
  return last.parallel ? Object.fromEntries(last.steps.map((s) => [s.id, outputs[s.id] ?? null])) : (outputs[last.steps[0].id] ?? null);
}
