/** How the CLI prints transitions: one line each, with the fork and the join called out. */
import { activeStage, type WorkflowSnapshot } from '../../machines/index.js';
import type { StoredRecord } from '../log/records.js';

export function stateText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (!value || typeof value !== 'object') return String(value);
  return Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => (typeof v === 'string' ? `${k}:${v}` : k.startsWith('group(') ? `{${stateText(v).replace(/^(.*)$/, '$1')}}` : `${k}.${stateText(v)}`))
    .join(' ');
}

export class TransitionPrinter {
  private lastStage?: string;

  constructor(private readonly write: (line: string) => void) {}

  line({ seq, record }: StoredRecord, snapshot: WorkflowSnapshot): void {
    const r = record as StoredRecord['record'] & { stepId?: string; attempt?: number; error?: { message: string }; skipped?: boolean; name?: string; wakeAt?: string; deadline?: string };
    const what = [r.type.padEnd(18), r.stepId ? `${r.stepId}${r.attempt && r.type === 'StepStarted' ? ` (attempt ${r.attempt})` : ''}` : r.name ? `signal ${r.name}` : ''].join(' ');
    let note = '';
    if (r.type === 'StepFailed' || r.type === 'ExecutionFailed') note = `  ✗ ${r.error?.message ?? ''}`;
    if (r.skipped) note = '  (skipped: when is false)';
    if (r.type === 'StepStarted' && (r.wakeAt || r.deadline)) note = r.wakeAt ? `  (wakes at ${r.wakeAt})` : `  (times out at ${r.deadline})`;
    if (r.type === 'ExecutionStarted') this.write(`execution ${r.executionId} (workflow ${r.workflowId})`);
    const stage = activeStage(snapshot);
    if (stage && stage.key !== this.lastStage && r.type !== 'ExecutionStarted') {
      const prevWasGroup = this.lastStage?.startsWith('group(');
      if (stage.parallel) note += `  ⇉ fork: ${stage.steps.map((s) => s.id).join(', ')}`;
      else if (prevWasGroup) note += `  ⇇ join → ${stage.key}`;
    } else if (!stage && this.lastStage?.startsWith('group(') && r.type === 'StepCompleted') {
      note += '  ⇇ join → end';
    }
    this.lastStage = stage?.key;
    this.write(`#${String(seq).padEnd(5)} ${what.padEnd(40)} ${stateText(record.state)}${note}`);
  }
}
