/**
 * A definition as a Mermaid flowchart: the stages in run order, a parallel
 * group as a fork and a join, each step labelled with its type (and its
 * retries, `when`, `onError: continue`). Given each step's phase (an
 * execution), steps are coloured: done, running or waiting, failed. Pure.
 */
import { planStages, type StepPhase } from '../../machines/index.js';
import type { Definition, Step } from '../../machines/definition.js';

const CLASSES: Record<string, string> = {
  done: 'fill:#d3f9d8,stroke:#2b8a3e',
  active: 'fill:#d0ebff,stroke:#1c7ed6,stroke-width:2px',
  failed: 'fill:#ffe3e3,stroke:#c92a2a,stroke-width:2px',
};

export function mermaidFlowchart(def: Definition, phases?: Record<string, StepPhase>): string {
  const stages = planStages(def);
  // Node ids are positional: step ids may be Mermaid keywords (end, graph) or hold '-'.
  const nodeOf = new Map(def.steps.map((s, i) => [s.id, `s${i}`]));
  const lines = [`flowchart TD`, `  %% workflow ${def.id}${def.version ? ` v${def.version}` : ''}`, `  start(("start"))`];
  for (const s of def.steps) lines.push(`  ${nodeOf.get(s.id)}["${label(s)}"]`);
  lines.push(`  finish(("end"))`);
  let previous = ['start'];
  stages.forEach((stage, i) => {
    const nodes = stage.steps.map((s) => nodeOf.get(s.id)!);
    if (stage.parallel) {
      const fork = `fork${i}`;
      const join = `join${i}`;
      lines.push(`  ${fork}{{"fork"}}`, `  ${join}{{"join"}}`);
      for (const p of previous) lines.push(`  ${p} --> ${fork}`);
      for (const n of nodes) lines.push(`  ${fork} --> ${n}`, `  ${n} --> ${join}`);
      previous = [join];
    } else {
      for (const p of previous) lines.push(`  ${p} --> ${nodes[0]}`);
      previous = nodes;
    }
  });
  for (const p of previous) lines.push(`  ${p} --> finish`);
  if (phases) {
    const by = (wanted: StepPhase[]) => def.steps.filter((s) => wanted.includes(phases[s.id])).map((s) => nodeOf.get(s.id)!);
    const groups = { done: by(['done']), active: by(['running', 'waiting', 'backoff']), failed: by(['failed']) };
    for (const [name, style] of Object.entries(CLASSES)) lines.push(`  classDef ${name} ${style}`);
    for (const [name, nodes] of Object.entries(groups)) if (nodes.length) lines.push(`  class ${nodes.join(',')} ${name}`);
  }
  return lines.join('\n');
}

function label(s: Step): string {
  const notes = [s.type, ...(s.retry ? [`retry ×${s.retry.maxAttempts}`] : []), ...(s.when ? ['when …'] : []), ...(s.onError === 'continue' ? ['on error: continue'] : [])];
  return `${escape(s.id)}<br/><small>${escape(notes.join(' · '))}</small>`;
}

/** Mermaid labels are quoted: a quote or angle bracket inside must be an entity. */
const escape = (text: string) => text.replace(/"/g, '#quot;').replace(/</g, '#lt;').replace(/>/g, '#gt;');
