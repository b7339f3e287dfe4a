/**
 * `loop`: a compound state whose `body` is re-entered for each iteration.
 * The worker records each iteration's start (StepStarted with `iteration`)
 * after reading `until` at `check`, and the loop's end (StepCompleted with
 * `iterations`); the machine never evaluates `until`. Entering an iteration
 * clears the body's steps (outputs, attempts, errors), so each iteration
 * runs them afresh (loops inside count from 1 again). Output: the last step's output of the last iteration.
 */
import { assign } from 'xstate';
import { walkSteps } from '../blocks.js';
import type { LoopStep } from '../definition.js';
import type { StepStarted } from '../events.js';
import { emptyStepMap, stepMapDelete, stepMapGet, stepMapSet } from '../stepMap.js';
import { containerNode, isStepEvent, lastOutput, setOutput, type Args, type Compiler } from './common.js';

export function loopNode(step: LoopStep, compile: Compiler) {
  const isStep = isStepEvent(step.id);
  const inner = [...walkSteps(step.steps)].map((v) => v.step.id);
  const innerLoops = [...walkSteps(step.steps)].filter((v) => v.step.type === 'loop').map((v) => v.step.id);
  const nextIteration = ({ context, event }: Args) => isStep({ context, event }) && (event as StepStarted).iteration === (stepMapGet(context.iterations ?? emptyStepMap<number>(), step.id) ?? 0) + 1;
  const enter = assign(({ context, event }: Args) => {
    let { outputs, attempts, errors } = context;
    for (const id of inner) {
      outputs = stepMapDelete(outputs, id);
      attempts = stepMapDelete(attempts, id);
      errors = stepMapDelete(errors, id);
    }
    // Loops inside start counting again: their first iteration of this round is 1.
    let iterations = context.iterations ?? emptyStepMap<number>();
    for (const id of innerLoops) iterations = stepMapDelete(iterations, id);
    const e = event as StepStarted;
    return { outputs, attempts: stepMapSet(attempts, step.id, e.attempt), errors, iterations: stepMapSet(iterations, step.id, e.iteration!) };
  });
  const iterate = { guard: nextIteration, target: 'body', actions: enter };
  const states = {
    body: { ...compile.block(step.steps), onDone: { target: 'check', actions: setOutput(step.id, (ctx) => lastOutput(ctx, step.steps, (id) => stepMapGet(ctx.outputs, id))) } },
    // The worker reads `until` here: another iteration (StepStarted), or the end (StepCompleted, or StepFailed past maxIterations).
    check: { on: { StepStarted: iterate, StepCompleted: { guard: isStep, target: 'done', actions: assign(({ context, event }: Args) => ({ outputs: stepMapSet(context.outputs, step.id, (event as { output: unknown }).output) })) } } },
  };
  return containerNode(step, { StepStarted: iterate }, states);
}
