/**
 * The run order of a definition as stages: a single step, or a parallel group
 * (fork-join). Pure; assumes a validated definition.
 */
import type { Definition, Step } from './definition.js';

export interface Stage {
  /** The state node key: the step id, or `group(a,b,c)` for a parallel group. */
  key: string;
  parallel: boolean;
  steps: Step[];
}

export const END_STATE = '(end)';

export function planStages(def: Definition): Stage[] {
  const groupOf = new Map<string, number>();
  def.parallel.forEach((g, gi) => g.forEach((id) => groupOf.set(id, gi)));
  const stages: Stage[] = [];
  let lastGroup: number | undefined;
  for (const step of def.steps) {
    const g = groupOf.get(step.id);
    if (g !== undefined && g === lastGroup) stages[stages.length - 1].steps.push(step);
    else stages.push({ key: step.id, parallel: g !== undefined, steps: [step] });
    lastGroup = g;
  }
  for (const s of stages) if (s.parallel) s.key = `group(${s.steps.map((st) => st.id).join(',')})`;
  return stages;
}
