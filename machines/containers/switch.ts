/**
 * `switch`: a compound state with one state per case (`case:0`, …, `default`).
 * Its StepStarted records which case the worker's evaluation chose (`case`:
 * an index, `"default"`, or null for none), so replay never evaluates a
 * `when` again. Output: the last output of the block that ran (null if none).
 */
import { assign } from 'xstate';
import type { SwitchStep } from '../definition.js';
import type { StepStarted } from '../events.js';
import { stepMapGet, stepMapSet } from '../stepMap.js';
import { containerNode, isStepEvent, lastOutput, setOutput, type Args, type Compiler } from './common.js';

export const caseKey = (c: number | 'default') => (c === 'default' ? 'default' : `case:${c}`);

export function switchNode(step: SwitchStep, compile: Compiler) {
  const isStep = isStepEvent(step.id);
  const chose = (c: number | 'default' | null) => (a: Args) => isStep(a) && (a.event as StepStarted).case === c;
  const started = assign(({ context, event }: Args) => ({ attempts: stepMapSet(context.attempts, step.id, (event as StepStarted).attempt) }));
  const blocks: [number | 'default', typeof step.cases[number]['steps']][] = step.cases.map((c, i) => [i, c.steps]);
  if (step.default) blocks.push(['default', step.default]);
  const inner = Object.fromEntries(blocks.map(([c, steps]) => [caseKey(c), {
    ...compile.block(steps),
    onDone: { target: 'closing', actions: setOutput(step.id, (ctx) => lastOutput(ctx, steps, (id) => stepMapGet(ctx.outputs, id))) },
  }]));
  const pendingOn = {
    StepStarted: [
      ...blocks.map(([c]) => ({ guard: chose(c), target: caseKey(c), actions: started })),
      { guard: chose(null), target: 'closing', actions: [started, setOutput(step.id, () => null)] },
    ],
  };
  return containerNode(step, pendingOn, inner);
}
