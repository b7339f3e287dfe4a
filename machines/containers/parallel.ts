/**
 * `parallel`: an XState parallel state with one region per branch, each
 * region the branch's block run in order; the join is the parallel state's
 * onDone. Output: `{branch: last output of that branch}`.
 */
import { assign } from 'xstate';
import type { ParallelStep } from '../definition.js';
import type { StepStarted } from '../events.js';
import { stepMapGet, stepMapSet } from '../stepMap.js';
import { containerNode, isStepEvent, lastOutput, setOutput, type Args, type Compiler } from './common.js';

export function parallelNode(step: ParallelStep, compile: Compiler) {
  const isStep = isStepEvent(step.id);
  const started = assign(({ context, event }: Args) => ({ attempts: stepMapSet(context.attempts, step.id, (event as StepStarted).attempt) }));
  const branches = Object.entries(step.branches);
  const inner = {
    branches: {
      type: 'parallel',
      states: Object.fromEntries(branches.map(([name, steps]) => [name, compile.block(steps)])),
      onDone: {
        target: 'closing',
        actions: setOutput(step.id, (ctx) => Object.fromEntries(branches.map(([name, steps]) => [name, lastOutput(ctx, steps, (id) => stepMapGet(ctx.outputs, id))]))),
      },
    },
  };
  return containerNode(step, { StepStarted: { guard: isStep, target: 'branches', actions: started } }, inner);
}
