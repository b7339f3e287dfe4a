/**
 * The statechart of the compiled machine (model/statechart.ts): compound
 * states as nested boxes, a parallel state's regions side by side, the
 * states the execution is in highlighted, failed steps marked. A step's box
 * is a button: clicking it picks the step (for a resume).
 */
import { Fragment } from 'preact';
import type { ChartNode } from '../model/statechart.js';

interface Props {
  root: ChartNode;
  active: Set<string>;
  failed: Set<string>;
  selected?: string;
  onSelect: (stepId: string) => void;
}

function StepNode({ node, active, failed, selected, onSelect }: Props & { node: ChartNode }) {
  const step = node.step!;
  const phase = node.children.find((c) => active.has(c.id))?.key;
  return (
    <div class={`sc-step${active.has(node.id) ? ' active' : ''}${failed.has(step.id) ? ' failed' : ''}${selected === step.id ? ' selected' : ''}`} data-state={node.id} data-step={step.id}>
      <button type="button" class="sc-step-title" onClick={() => onSelect(step.id)}>
        {step.id} <small>{step.type}</small>
        <span class="sr-only">
          {phase ? `, ${phase}` : ''}
          {failed.has(step.id) ? ', failed' : ''}
        </span>
      </button>
      <ul class="sc-phases" aria-hidden="true">
        {node.children.map((c) => (
          <li key={c.key} class={active.has(c.id) ? 'on' : ''}>
            {c.key}
          </li>
        ))}
      </ul>
    </div>
  );
}

function Node(props: Props & { node: ChartNode }) {
  const { node, active } = props;
  if (node.step) return <StepNode {...props} />;
  const on = active.has(node.id);
  const cls = `sc-node sc-${node.type}${on ? ' active' : ''}`;
  if (node.type === 'atomic' || node.type === 'final') {
    return (
      <div class={cls} data-state={node.id}>
        {node.key}
      </div>
    );
  }
  const label = node.type === 'parallel' ? 'parallel' : node.key || 'workflow';
  // The running state's stages run top to bottom; a parallel state's regions side by side.
  const direction = node.type === 'parallel' ? 'row' : node.key === 'running' ? 'column' : 'row';
  return (
    <div class={cls} data-state={node.id || 'workflow'}>
      <span class="sc-label">{label}</span>
      <div class={`sc-children sc-${direction}`}>
        {node.children.map((child, i) => (
          <Fragment key={child.id}>
            {i > 0 && direction === 'column' ? <span class="sc-arrow" aria-hidden="true">↓</span> : null}
            <Node {...props} node={child} />
          </Fragment>
        ))}
      </div>
    </div>
  );
}

export function StatechartView(props: Props) {
  return (
    <div class="statechart">
      <Node {...props} node={props.root} />
    </div>
  );
}
