/**
 * Reading a workflow snapshot: the phase of every step and the execution's
 * status. The worker decides what to run from these. Pure.
 */
import type { Definition } from './definition.js';
import { END_STATE, planStages, type Stage } from './stages.js';
import { stepMapGet, stepMapHas } from './stepMap.js';
import { activeIn, type ActiveStep } from './containers/walk.js';
import type { WorkflowSnapshot } from './workflowMachine.js';

/** A leaf's phase; a container is also `active` (its blocks run), `closing` or `check` (the worker records its end or next iteration); a graph step `blocked`. */
export type StepPhase = 'pending' | 'queued' | 'running' | 'waiting' | 'backoff' | 'done' | 'failed' | 'active' | 'closing' | 'check' | 'blocked';
export const STATUSES = ['PENDING', 'RUNNING', 'WAITING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type ExecutionStatus = (typeof STATUSES)[number];

interface StagePlan {
  stages: Stage[];
  /** Stage index by state key and by step id: found in O(1) on every transition, not by a scan. */
  byKey: Map<string, number>;
  byStep: Map<string, number>;
}
const planCache = new WeakMap<Definition, StagePlan>();
function planOf(def: Definition): StagePlan {
  let p = planCache.get(def);
  if (!p) {
    const stages = planStages(def);
    const byKey = new Map<string, number>();
    const byStep = new Map<string, number>();
    stages.forEach((st, i) => {
      byKey.set(st.key, i);
      for (const step of st.steps) byStep.set(step.id, i);
    });
    planCache.set(def, (p = { stages, byKey, byStep }));
  }
  return p;
}
export function stagesOf(def: Definition): Stage[] {
  return planOf(def).stages;
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
    for (const s of definition.steps) phases[s.id] = stepMapHas(outputs, s.id) ? 'done' : stepMapHas(errors, s.id) && value === 'failed' ? 'failed' : 'pending';
    return phases;
  }
  const activeKey = typeof running === 'string' ? running : Object.keys(running)[0];
  const active = activeKey === END_STATE ? stages.length : (planOf(definition).byKey.get(activeKey) ?? -1);
  stages.forEach((stage, i) => {
    if (i === active) Object.assign(phases, stagePhases(definition, stage, running, activeKey));
    else for (const step of stage.steps) phases[step.id] = i < active ? 'done' : 'pending';
  });
  return phases;
}

/** Phases of the steps of the stage being run, and of the active steps inside its containers, read from the state value. */
function stagePhases(def: Definition, stage: Stage, running: Value, activeKey: string, active: ActiveStep[] = []): Record<string, StepPhase> {
  for (const step of stage.steps) {
    const v = stage.parallel
      ? (running as Record<string, Record<string, Value>>)[activeKey][step.id]
      : (running as Record<string, Value>)[activeKey];
    activeIn(def, step, v, active);
  }
  const phases: Record<string, StepPhase> = {};
  for (const a of active) phases[a.step.id] = a.phase as StepPhase;
  return phases;
}

export function statusOf(snapshot: WorkflowSnapshot): ExecutionStatus {
  return inspectSnapshot(snapshot).status;
}

export interface SnapshotView {
  status: ExecutionStatus;
  /**
   * Phases of the current stage's steps only (every step before it is done, every one after it
   * pending): this runs on every transition, and must not cost one entry per step of the definition.
   */
  phases: Record<string, StepPhase>;
  /** The stage being run, if any. */
  stage?: Stage;
  /** The steps to look at: the current stage's, and the active ones inside its containers. */
  active: ActiveStep[];
}

/** Status, the current stage and its steps' phases, read from the state value once. */
export function inspectSnapshot(snapshot: WorkflowSnapshot): SnapshotView {
  const value = snapshot.value as Value;
  if (typeof value === 'string') {
    // `queued`: waiting for a workflow-level concurrency key (machines/queue.ts).
    const status: ExecutionStatus = value === 'pending' ? 'PENDING' : value === 'queued' ? 'WAITING' : value === 'completed' ? 'COMPLETED' : value === 'failed' ? 'FAILED' : 'CANCELLED';
    return { status, phases: {}, active: [] };
  }
  const stage = activeStage(snapshot);
  const running = (value as Record<string, Value>).running;
  const active: ActiveStep[] = [];
  const phases = stage ? stagePhases(snapshot.context.definition, stage, running, stage.key, active) : {};
  // WAITING only when every step to act on is done or waiting for a signal or a timer: a pending
  // step is about to start. Containers whose blocks run, and graph steps waiting on their needs, wait on those.
  const current = active.filter((a) => a.phase !== 'active' && a.phase !== 'blocked').map((a) => a.phase);
  // A step queued for a concurrency or rate key waits too: it holds no worker slot.
  const waiting = current.some((p) => p === 'waiting' || p === 'queued') && current.every((p) => p === 'waiting' || p === 'queued' || p === 'done');
  return { status: waiting ? 'WAITING' : 'RUNNING', phases, stage, active };
}

export const isTerminal = (s: ExecutionStatus) => s === 'COMPLETED' || s === 'FAILED' || s === 'CANCELLED';

/** The stage a step belongs to, or undefined. */
export function stageOfStep(def: Definition, stepId: string): { stage: Stage; index: number } | undefined {
  const { stages, byStep } = planOf(def);
  const index = byStep.get(stepId);
  return index === undefined ? undefined : { stage: stages[index], index };
}

/** The stage being run (undefined when not running, or past the last stage). */
export function activeStage(snapshot: WorkflowSnapshot): Stage | undefined {
  const value = snapshot.value as Value;
  if (typeof value !== 'object') return undefined;
  const running = (value as Record<string, Value>).running;
  const key = typeof running === 'string' ? running : Object.keys(running)[0];
  const { stages, byKey } = planOf(snapshot.context.definition);
  const index = byKey.get(key);
  return index === undefined ? undefined : stages[index];
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
  return last.parallel ? Object.fromEntries(last.steps.map((s) => [s.id, stepMapGet(outputs, s.id) ?? null])) : (stepMapGet(outputs, last.steps[0].id) ?? null);
}
