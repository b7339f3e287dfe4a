/**
 * Reading a container's part of a state value: which steps inside it are
 * active and in which phase. A leaf's phase is its state (`pending`,
 * `running`, …); a container's is `active` while its blocks run, else its own
 * state (`pending`, `closing`, `check`, `done`, `failed`); a graph step that
 * waits on its needs is `blocked`. Pure.
 */
import { findStep } from '../blocks.js';
import type { Definition, Step } from '../definition.js';
import { BLOCK_END } from './common.js';

export interface ActiveStep { step: Step; phase: string }

type Value = string | { [k: string]: Value };

/** The step and, inside it, every active step, in tree order. */
export function activeIn(def: Definition, step: Step, value: Value, out: ActiveStep[]): void {
  if (typeof value === 'string') {
    out.push({ step, phase: value });
    return;
  }
  out.push({ step, phase: 'active' });
  switch (step.type) {
    case 'switch': {
      const [key] = Object.keys(value);
      const steps = key === 'default' ? step.default ?? [] : step.cases[Number(key.slice('case:'.length))]?.steps ?? [];
      return activeInBlock(def, steps, value[key], out);
    }
    case 'parallel': {
      const regions = value.branches as Record<string, Value>;
      for (const [name, steps] of Object.entries(step.branches)) if (regions[name] !== undefined) activeInBlock(def, steps, regions[name], out);
      return;
    }
    case 'loop':
      return activeInBlock(def, step.steps, value.body, out);
    case 'graph': {
      const regions = value.steps as Record<string, Value>;
      for (const s of step.steps) {
        const r = regions[s.id];
        if (r === 'blocked') out.push({ step: s, phase: 'blocked' });
        else if (typeof r === 'object' && r.run !== undefined) activeIn(def, s, r.run, out);
      }
      return;
    }
    default:
      return;
  }
}

function activeInBlock(def: Definition, steps: Step[], value: Value, out: ActiveStep[]): void {
  if (value === undefined || value === BLOCK_END || typeof value === 'string') return;
  const [id] = Object.keys(value);
  const step = steps.find((s) => s.id === id) ?? findStep(def, id);
  if (step) activeIn(def, step, value[id], out);
}
