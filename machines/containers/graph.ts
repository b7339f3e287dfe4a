/**
 * `graph`: a parallel state with one region per step; a region stays
 * `blocked` until every step it needs has an output, then runs its step.
 * Output: `{stepId: output}`.
 */
import { assign } from 'xstate';
import type { GraphStep } from '../definition.js';
import type { StepStarted } from '../events.js';
import { stepMapGet, stepMapHas, stepMapSet } from '../stepMap.js';
import { BLOCK_END, containerNode, isStepEvent, setOutput, type Args, type Compiler } from './common.js';

export function graphNode(step: GraphStep, compile: Compiler) {
  const isStep = isStepEvent(step.id);
  const started = assign(({ context, event }: Args) => ({ attempts: stepMapSet(context.attempts, step.id, (event as StepStarted).attempt) }));
  const region = (s: GraphStep['steps'][number]) => ({
    initial: 'blocked',
    states: {
      blocked: { always: { guard: ({ context }: Args) => (s.needs ?? []).every((n) => stepMapHas(context.outputs, n)), target: 'run' } },
      run: { ...compile.node(s), onDone: BLOCK_END },
      [BLOCK_END]: { type: 'final' },
    },
  });
  const inner = {
    steps: {
      type: 'parallel',
      states: Object.fromEntries(step.steps.map((s) => [s.id, region(s)])),
      onDone: { target: 'closing', actions: setOutput(step.id, (ctx) => Object.fromEntries(step.steps.map((s) => [s.id, stepMapGet(ctx.outputs, s.id) ?? null]))) },
    },
  };
  return containerNode(step, { StepStarted: { guard: isStep, target: 'steps', actions: started } }, inner);
}
