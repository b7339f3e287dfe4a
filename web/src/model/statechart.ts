/**
 * The workflow's statechart, read from the machine the engine runs
 * (machines/workflowMachine.ts compiles the same definition): every state
 * node with its type and children, which nodes are steps, and which are
 * active in a recorded state value. Pure.
 */
import { compileWorkflow } from '../../../machines/workflowMachine.js';
import type { Definition } from './records.js';

export interface ChartNode {
  key: string;
  /** dot path from the root, e.g. `running.group(a,b).a.pending` */
  id: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  children: ChartNode[];
  /** Set on a step's node (its children are the step's phases). */
  step?: { id: string; type: string };
}

interface MachineNode { key: string; type: ChartNode['type']; states: Record<string, MachineNode> }

export function chartOf(definition: Definition): ChartNode {
  const machine = compileWorkflow(definition);
  const steps = new Map(definition.steps.map((s) => [s.id, s.type]));
  const walk = (node: MachineNode, id: string, parentId: string): ChartNode => {
    const underRunning = parentId === 'running' || (parentId.startsWith('running.') && !parentId.slice(8).includes('.'));
    const stepType = underRunning && steps.has(node.key) && Object.keys(node.states).length ? steps.get(node.key) : undefined;
    return {
      key: node.key,
      id,
      type: node.type,
      children: Object.values(node.states).map((child) => walk(child, id ? `${id}.${child.key}` : child.key, id)),
      ...(stepType ? { step: { id: node.key, type: stepType } } : {}),
    };
  };
  return walk(machine.root as unknown as MachineNode, '', '');
}

/** The ids of every state node a recorded state value is in (ancestors included). */
export function activeIds(value: unknown, prefix = ''): Set<string> {
  const out = new Set<string>();
  const add = (v: unknown, at: string) => {
    if (typeof v === 'string') {
      const id = at ? `${at}.${v}` : v;
      out.add(id);
      return;
    }
    if (v && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        const id = at ? `${at}.${k}` : k;
        out.add(id);
        add(child, id);
      }
    }
  };
  add(value, prefix);
  return out;
}
