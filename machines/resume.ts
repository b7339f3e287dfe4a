/**
 * Rebuilding the actor for a resume. Given the snapshot at a checkpoint
 * (folded from the log), produce the snapshot the resumed actor starts from:
 * steps that completed before the checkpoint stay done with their outputs;
 * the resume stage and everything after it are pending again. Pure: replay
 * calls it for every ExecutionResumed record and gets the same state.
 */
import type { Budget, Definition } from './definition.js';
import { DefinitionError, InvalidExecutionStateError, StepNotFoundError } from './errors.js';
import { stagesOf, stepPhases } from './phases.js';
import { END_STATE } from './stages.js';
import { compileCached } from './cache.js';
import { blocksOf, stepIndex, walkSteps } from './blocks.js';
import { isContainer } from './definition.js';
import { pendingAgain, resumeInside } from './resumeInside.js';
import { emptyStepMap, stepMapEntries, stepMapFrom, stepMapGet, stepMapSet, type StepMap } from './stepMap.js';
import { mapPhase, progressOf, resumedProgress, type MapProgress } from './containers/map.js';
import type { WorkflowContext, WorkflowSnapshot } from './workflowMachine.js';
import type { ItemsAgain } from './events.js';

export interface ResumePlan {
  /** The definition to continue with (the recorded one, or replacement steps). */
  definition: Definition;
  /** Re-run this step's stage and everything after it. Without it: continue from the checkpoint. */
  fromStep?: string;
  budget?: Budget;
  /** Continuing an interrupted run: a step cut off mid-attempt counts its next run as a new attempt. */
  recovery?: boolean;
  /** From a step inside a map's block: the items whose children are resumed from it. */
  items?: ItemsAgain;
}

export function resumeSnapshot(atCheckpoint: WorkflowSnapshot, plan: ResumePlan): WorkflowSnapshot {
  if (plan.fromStep !== undefined) {
    // A step inside a container that was under way at the checkpoint: only its part runs again.
    const inside = resumeInside(atCheckpoint, plan.definition, plan.fromStep);
    if (inside) return compileCached(plan.definition).resolveState({ value: inside.value, context: { ...inside.context, budget: plan.budget ?? inside.context.budget } });
  }
  const before = atCheckpoint.context;
  const oldStages = stagesOf(before.definition);
  const stages = stagesOf(plan.definition);
  const phases = stepPhases(atCheckpoint);

  // The stage to resume at: the named step's, or the first one not fully done.
  let target: number;
  // A step inside a container re-runs from its top-level container (the resume point is a top-level stage).
  const fromStep = plan.fromStep === undefined ? undefined : topLevelOf(plan.definition, plan.fromStep);
  if (fromStep !== undefined) {
    target = stages.findIndex((s) => s.steps.some((st) => st.id === fromStep));
    if (target < 0) throw new StepNotFoundError(fromStep, plan.definition.id);
  } else {
    target = oldStages.findIndex((s) => s.steps.some((st) => phases[st.id] !== 'done'));
    if (target < 0) target = oldStages.length;
  }

  // Stages before the resume point are kept as recorded: they must still be there, unchanged.
  for (let i = 0; i < Math.min(target, stages.length); i++) {
    if (stages[i].key !== oldStages[i]?.key) {
      throw new DefinitionError([{
        path: 'steps',
        message: `steps before the resume point must keep their ids and groups: expected '${oldStages[i]?.key ?? '(none)'}' at position ${i + 1}, found '${stages[i].key}'`,
      }]);
    }
    for (const st of stages[i].steps) {
      if (phases[st.id] !== 'done') {
        throw new InvalidExecutionStateError(`cannot resume from '${plan.fromStep}': step '${st.id}' before it has not completed`, { stepId: st.id });
      }
    }
  }
  if (target > stages.length) target = stages.length;

  // Inside the resume stage: from a checkpoint, branches that completed stay done;
  // from a named step, the whole group re-runs.
  const keep = new Set<string>();
  for (let i = 0; i < target; i++) for (const st of stages[i].steps) keep.add(st.id);
  const stage = stages[target];
  const keepInStage = (id: string) =>
    plan.fromStep === undefined && stage !== undefined && oldStages[target]?.key === stage.key && phases[id] === 'done';
  if (stage) for (const st of stage.steps) if (keepInStage(st.id)) keep.add(st.id);
  // The steps inside a kept container keep their outputs too.
  for (const st of plan.definition.steps) if (keep.has(st.id)) for (const v of walkSteps(blocksOf(st).flatMap((b) => b.steps))) keep.add(v.step.id);

  // From a checkpoint, a container of the resume stage that was under way continues where it was:
  // what completed inside it (branches, items of a block, earlier steps of the current iteration)
  // stays done, what had not is pending again.
  const runningAt = (atCheckpoint.value as { running?: unknown }).running;
  const valueAt = (id: string): Value | undefined => {
    if (!stage || typeof runningAt !== 'object' || runningAt === null) return undefined;
    const at = (runningAt as Record<string, Value>)[stage.key];
    return stage.parallel ? (at as Record<string, Value> | undefined)?.[id] : at;
  };
  const underWay = new Map<string, Value>();
  // A map under way keeps its items' results: a resume re-runs only its failed items and those
  // cut off (a recovery leaves the running ones running). Its progress is rebuilt to say so.
  let maps = before.maps ?? emptyStepMap<MapProgress>();
  const mapAgain = (id: string, phase: Value): Value | undefined => {
    const st = stepIndex(plan.definition).get(id)?.step;
    const p = progressOf(before, id);
    if (st?.type !== 'map' || !p || typeof phase !== 'string' || !['launching', 'waiting', 'failed'].includes(phase)) return undefined;
    const next = plan.recovery ? p : resumedProgress(p);
    maps = stepMapSet(maps, id, next);
    return mapPhase(next, st);
  };
  if (stage && plan.fromStep === undefined && oldStages[target]?.key === stage.key) {
    for (const st of stage.steps) {
      const v = valueAt(st.id);
      const old = oldStages[target].steps.find((o) => o.id === st.id);
      if (JSON.stringify(old) !== JSON.stringify(st)) continue;
      const map = v === undefined ? undefined : mapAgain(st.id, v);
      if (map !== undefined) {
        underWay.set(st.id, map);
        keep.add(st.id);
      } else if (isContainer(st) && v && typeof v === 'object') {
        underWay.set(st.id, pendingAgain(v, mapAgain));
        keep.add(st.id);
        for (const d of walkSteps(blocksOf(st).flatMap((b) => b.steps))) keep.add(d.step.id);
      }
    }
  }

  // Recovery leaves a step waiting on a recorded timer waiting: a sleep is not restarted from zero,
  // a signal's timeout not pushed back.
  const waitsOnTimer = (id: string) => plan.recovery === true && phases[id] === 'waiting' && before.timers?.[id]?.attempt === stepMapGet(before.attempts, id);
  const phaseOf = (id: string): Value => underWay.get(id) ?? (keep.has(id) ? 'done' : waitsOnTimer(id) ? 'waiting' : 'pending');
  const value = stage === undefined
    ? { running: END_STATE }
    : { running: { [stage.key]: stage.parallel ? Object.fromEntries(stage.steps.map((st) => [st.id, phaseOf(st.id)])) : phaseOf(stage.steps[0].id) } };

  const only = <T>(rec: StepMap<T>) => stepMapFrom(stepMapEntries(rec).filter(([k]) => keep.has(k)));
  const context: WorkflowContext = {
    ...before,
    definition: plan.definition,
    outputs: only(before.outputs),
    attempts: plan.recovery ? before.attempts : only(before.attempts),
    errors: only(before.errors),
    ...(before.maps ? { maps } : {}),
    budget: plan.budget ?? before.budget,
    itemsAgain: plan.items,
    error: undefined,
    output: undefined,
  };
  return compileCached(plan.definition).resolveState({ value, context });
}

/** The top-level step a step belongs to (itself at the top level); the id itself when unknown (refused later). */
function topLevelOf(def: Definition, id: string): string {
  const v = stepIndex(def).get(id);
  return v ? (v.ancestors[0] ?? v.step).id : id;
}

type Value = string | { [k: string]: Value };
