/**
 * Resuming from a step inside a container (`--from-step` naming a step in a
 * branch, a case, a loop body or a graph). Only the named step, what follows
 * it in its block, and what follows each enclosing container in its own block
 * run again; the rest of the containers keeps its state at the checkpoint:
 * a sibling branch that had completed stays completed, one cut off mid-way
 * continues where it was. Pure: replay rebuilds the same state from the same
 * checkpoint.
 */
import { blocksOf, stepIndex, walkSteps } from './blocks.js';
import type { Definition, Step } from './definition.js';
import { InvalidExecutionStateError } from './errors.js';
import { BLOCK_END } from './containers/common.js';
import { stageOfStep } from './phases.js';
import { stepMapDelete, stepMapEntries, stepMapFrom, stepMapHas, type StepMap } from './stepMap.js';
import type { WorkflowContext, WorkflowSnapshot } from './workflowMachine.js';

type Value = string | { [k: string]: Value };

/** Container types whose inner state lives in this execution's machine (a map's items and a child workflow do not). */
const IN_MACHINE = new Set(['switch', 'parallel', 'loop', 'graph']);
/** Phases of steps that had started but not completed: they run again. */
const RUN_AGAIN = new Set(['running', 'backoff', 'waiting', 'failed']);

export interface InsidePlan {
  value: Value;
  context: WorkflowContext;
}

/**
 * The state to resume at `fromStep` inside a container, or undefined when the
 * checkpoint does not hold its top-level container under way (then the whole
 * container runs again, as before) or the container changed in the new definition.
 */
export function resumeInside(at: WorkflowSnapshot, definition: Definition, fromStep: string): InsidePlan | undefined {
  const visit = stepIndex(definition).get(fromStep);
  if (!visit || visit.ancestors.length === 0) return undefined;
  const chain = visit.ancestors;
  if (!chain.every((a) => IN_MACHINE.has(a.type))) return undefined;
  const top = chain[0];
  const recordedTop = stepIndex(at.context.definition).get(top.id);
  if (!recordedTop || JSON.stringify(recordedTop.step) !== JSON.stringify(top)) return undefined;
  const found = stageOfStep(definition, top.id);
  const running = (at.value as { running?: Value }).running;
  if (!found || typeof running !== 'object') return undefined;
  const { stage } = found;
  const stageValue = running[stage.key];
  if (stageValue === undefined) return undefined;
  const topValue = stage.parallel ? (stageValue as Record<string, Value>)[top.id] : stageValue;
  if (typeof topValue !== 'object') return undefined; // not under way at the checkpoint

  const { outputs } = at.context;
  const rerun = new Set<string>();
  const value = enter(top, topValue, [...chain.slice(1), visit.step], outputs, rerun);
  // The enclosing containers run again from inside: none of them is done any more.
  for (const a of chain) rerun.add(a.id);
  const stageEntry = stage.parallel
    ? Object.fromEntries(stage.steps.map((s) => [s.id, s.id === top.id ? value : pendingAgain((stageValue as Record<string, Value>)[s.id])]))
    : value;

  const kept = <T>(m: StepMap<T>) => stepMapFrom(stepMapEntries(m).filter(([k]) => !rerun.has(k)));
  const keptOutputs = kept(outputs);
  let iterations = at.context.iterations;
  for (const id of rerun) if (iterations && !chain.some((a) => a.id === id)) iterations = stepMapDelete(iterations, id);
  const timers = at.context.timers && Object.fromEntries(Object.entries(at.context.timers).filter(([k]) => !rerun.has(k)));
  const context: WorkflowContext = {
    ...at.context,
    definition,
    outputs: keptOutputs,
    // What runs again starts from attempt 1; the enclosing containers keep theirs (their StepCompleted uses it).
    attempts: stepMapFrom(stepMapEntries(at.context.attempts).filter(([k]) => stepMapHas(keptOutputs, k) || chain.some((a) => a.id === k))),
    errors: stepMapFrom(stepMapEntries(at.context.errors).filter(([k]) => stepMapHas(keptOutputs, k))),
    ...(iterations ? { iterations } : {}),
    ...(timers ? { timers } : {}),
    error: undefined,
    output: undefined,
  };
  return { value: { running: { [stage.key]: stageEntry } }, context };
}

/**
 * The value of `container` with the block holding `path[0]` entered at that step
 * (recursively down `path`, whose last element is the step to run again).
 * Adds to `rerun` every step that runs again.
 */
function enter(container: Step, current: Value, path: Step[], outputs: StepMap<unknown>, rerun: Set<string>): Value {
  const [next, ...rest] = path;
  const block = blocksOf(container).find((b) => b.steps.some((s) => s.id === next.id))!;
  const index = block.steps.findIndex((s) => s.id === next.id);
  const nextValue = rest.length === 0 ? 'pending' : enter(next, childValue(container, current, block.key, next.id) ?? 'pending', rest, outputs, rerun);
  // The named step runs again whole; a container on the way to it only from inside.
  const again = (s: Step) => (s.id === next.id && rest.length > 0 ? rerun.add(s.id) : markRerun(s, rerun));
  // A container not under way (not started, or failed) runs its other blocks from their start; a finished one keeps them finished.
  const started = typeof current === 'object';
  const finished = current === 'done' || current === 'closing';

  if (container.type === 'graph') {
    // In a graph, what runs again is the step and every step that needs it, directly or not.
    for (const n of next.needs ?? []) if (!stepMapHas(outputs, n)) refuseUnmet(n, next.id);
    const rerunHere = dependents(container.steps, next.id);
    for (const s of container.steps) if (rerunHere.has(s.id)) again(s);
    const regions = started ? ((current as Record<string, Value>).steps as Record<string, Value>) : {};
    return {
      steps: Object.fromEntries(container.steps.map((s) => [
        s.id,
        s.id === next.id ? { run: nextValue } : rerunHere.has(s.id) ? 'blocked' : started ? pendingAgain(regions[s.id]) : finished ? BLOCK_END : 'blocked',
      ])),
    };
  }

  for (const before of block.steps.slice(0, index)) if (!stepMapHas(outputs, before.id)) refuseUnmet(before.id, next.id);
  for (const s of block.steps.slice(index)) again(s);
  const blockValue: Value = { [next.id]: nextValue };
  switch (container.type) {
    case 'parallel': {
      const regions = started ? ((current as Record<string, Value>).branches as Record<string, Value>) : {};
      const name = block.key.slice('branch:'.length);
      const other = (b: string, steps: Step[]): Value => (started ? pendingAgain(regions[b]) : finished || steps.length === 0 ? BLOCK_END : { [steps[0].id]: 'pending' });
      return { branches: Object.fromEntries(Object.entries(container.branches).map(([b, steps]) => [b, b === name ? blockValue : other(b, steps)])) };
    }
    case 'switch':
      // The recorded decision stands: only the case the switch took can be entered again.
      if (!started || !(block.key in (current as Record<string, Value>))) refuseNotEntered(container.id, next.id);
      return { [block.key]: blockValue };
    default: // loop: the current iteration runs again from the step
      if (current === 'pending') refuseNotEntered(container.id, next.id);
      return { body: blockValue };
  }
}

/** The value of the step `id` inside a container's value, where the container is at that step. */
function childValue(container: Step, current: Value, blockKey: string, id: string): Value | undefined {
  if (typeof current !== 'object') return undefined;
  let block: Value | undefined;
  switch (container.type) {
    case 'parallel': block = (current.branches as Record<string, Value> | undefined)?.[blockKey.slice('branch:'.length)]; break;
    case 'loop': block = current.body; break;
    case 'switch': block = current[blockKey]; break;
    case 'graph': {
      const region = (current.steps as Record<string, Value> | undefined)?.[id];
      return typeof region === 'object' ? region.run : undefined;
    }
    default: return undefined;
  }
  return typeof block === 'object' ? block[id] : undefined;
}

function markRerun(step: Step, rerun: Set<string>): void {
  rerun.add(step.id);
  for (const v of walkSteps(blocksOf(step).flatMap((b) => b.steps))) rerun.add(v.step.id);
}

/** The steps of a graph that need `id`, directly or through others, and `id` itself. */
function dependents(steps: { id: string; needs?: string[] }[], id: string): Set<string> {
  const out = new Set([id]);
  for (let grew = true; grew;) {
    grew = false;
    for (const s of steps) if (!out.has(s.id) && (s.needs ?? []).some((n) => out.has(n))) { out.add(s.id); grew = true; }
  }
  return out;
}

function refuseNotEntered(containerId: string, fromStep: string): never {
  throw new InvalidExecutionStateError(`cannot resume from '${fromStep}': '${containerId}' never ran the block that holds it`, { stepId: containerId });
}

function refuseUnmet(stepId: string, fromStep: string): never {
  throw new InvalidExecutionStateError(`cannot resume from '${fromStep}': step '${stepId}' before it has not completed`, { stepId });
}

/** A value with every step that had not completed pending again (a map under way: as `mapAgain` says, when given). */
export function pendingAgain(v: Value, mapAgain?: (id: string, phase: Value) => Value | undefined): Value {
  if (typeof v === 'string') return RUN_AGAIN.has(v) ? 'pending' : v;
  return Object.fromEntries(Object.entries(v).map(([k, inner]) => [k, mapAgain?.(k, inner) ?? pendingAgain(inner, mapAgain)]));
}
