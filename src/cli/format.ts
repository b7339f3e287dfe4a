/**
 * How the CLI prints an execution: one line per event, numbered within the
 * execution (#1 is its ExecutionStarted), a duration on every line that ends
 * a step, the fork and the join called out, and a closing line such as
 * `COMPLETED in 0.43 s · 5 steps · 1,064 tokens`.
 */
import { activeStage, type ExecutionStatus, type WorkflowSnapshot } from '../../machines/index.js';
import type { LogRecord, StoredRecord } from '../log/records.js';

export function stateText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (!value || typeof value !== 'object') return String(value);
  return Object.entries(value as Record<string, unknown>)
    .map(([k, v]) => (typeof v === 'string' ? `${k}:${v}` : k.startsWith('group(') ? `{${stateText(v)}}` : `${k}.${stateText(v)}`))
    .join(' ');
}

/** `4 ms`, `0.43 s`, `12.5 s`, `3 min 20 s`, `2 h 5 min`. */
export function formatDuration(ms: number): string {
  if (ms < 100) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  const min = Math.round(s / 60);
  return `${Math.floor(min / 60)} h${min % 60 ? ` ${min % 60} min` : ''}`;
}

export const formatCount = (n: number): string => n.toLocaleString('en');

export interface Outcome {
  status: ExecutionStatus;
  /** From the first record to the last. */
  ms: number;
  stepsDone: number;
  stepsTotal: number;
  tokens: number;
}

/** `COMPLETED in 0.43 s · 5 steps · 1,064 tokens`; `FAILED after 2.10 s · 3 of 5 steps`. */
export function closingLine(o: Outcome): string {
  const ended = o.status === 'COMPLETED';
  const steps = o.stepsDone === o.stepsTotal ? `${o.stepsTotal} step${o.stepsTotal === 1 ? '' : 's'}` : `${o.stepsDone} of ${o.stepsTotal} steps`;
  return [`${o.status} ${ended ? 'in' : 'after'} ${formatDuration(o.ms)}`, steps, ...(o.tokens > 0 ? [`${formatCount(o.tokens)} tokens`] : [])].join(' · ');
}

type Item = { index: number };
type AnyRecord = LogRecord & { stepId?: string; attempt?: number; error?: { message: string }; skipped?: boolean; name?: string; wakeAt?: string; deadline?: string; latencyMs?: number; retryInMs?: number; fromStep?: string; launch?: Item[]; results?: Item[]; failures?: Item[]; child?: string; count?: number };

/**
 * Numbers the events of one execution and times its steps: feed it the
 * records in order (from the first, or seeded with the history before).
 */
export class EventLines {
  private n = 0;
  private readonly stepStarts = new Map<string, number>();
  startedAt?: number;
  lastAt?: number;

  /** The number the next record gets, and a duration for a record that ends a step. */
  next(record: LogRecord): { n: number; durationMs?: number } {
    const r = record as AnyRecord;
    const at = Date.parse(r.at);
    this.n++;
    this.startedAt ??= at;
    this.lastAt = at;
    // A map's items starting or ending: the map itself neither starts nor ends there.
    if (r.launch || r.results || r.failures) return { n: this.n };
    if (r.type === 'StepStarted' && r.stepId) this.stepStarts.set(r.stepId, at);
    if ((r.type === 'StepCompleted' || r.type === 'StepFailed') && r.stepId) {
      const start = this.stepStarts.get(r.stepId);
      this.stepStarts.delete(r.stepId);
      if (r.skipped) return { n: this.n, durationMs: 0 };
      return { n: this.n, durationMs: start !== undefined ? at - start : r.latencyMs };
    }
    return { n: this.n };
  }

  /** One line: number, time, type, step, its duration, what happened. */
  line(record: LogRecord, withTime: boolean): string {
    const r = record as AnyRecord;
    const { n, durationMs } = this.next(record);
    const what = r.stepId ? `${r.stepId}${r.attempt && r.type === 'StepStarted' ? ` (attempt ${r.attempt})` : ''}` : r.name ? `signal ${r.name}` : '';
    const duration = durationMs === undefined ? '' : r.skipped ? 'skipped' : formatDuration(durationMs);
    return `${`#${n}`.padEnd(5)} ${withTime ? `${r.at}  ` : ''}${r.type.padEnd(18)} ${what.padEnd(22)} ${duration.padStart(8)}  ${stateText(r.state)}${note(r)}`;
  }
}

const indexes = (items: Item[]) => (items.length > 5 ? `${items.slice(0, 5).map((i) => i.index).join(', ')}… (${items.length})` : items.map((i) => i.index).join(', '));

function note(r: AnyRecord): string {
  if (r.launch) return `  (items ${indexes(r.launch)} started)`;
  if (r.results) return `  (items ${indexes(r.results)} done)`;
  if (r.failures) return `  ✗ (items ${indexes(r.failures)} failed) ${r.error?.message ?? ''}`;
  if (r.type === 'StepStarted' && r.count !== undefined) return `  (${r.count} items)`;
  if (r.type === 'StepStarted' && r.child) return `  (child execution ${r.child})`;
  if (r.type === 'StepFailed') return `  ✗ ${r.error?.message ?? ''}${r.retryInMs !== undefined ? ` (retry in ${formatDuration(r.retryInMs)})` : ''}`;
  if (r.type === 'ExecutionFailed') return `  ✗ ${r.error?.message ?? ''}`;
  if (r.skipped) return '  (when is false)';
  if (r.type === 'StepStarted' && r.wakeAt) return `  (wakes at ${r.wakeAt})`;
  if (r.type === 'StepStarted' && r.deadline) return `  (times out at ${r.deadline})`;
  if (r.type === 'ExecutionResumed') return `  (${r.fromStep ? `from step ${r.fromStep}` : (r as { reason?: string }).reason ?? ''})`;
  if (r.type === 'StepQueued' || r.type === 'ExecutionQueued') return `  (queued on ${r.keys.join(', ')}${r.until ? ` until ${r.until}` : ''})`;
  if ((r.type === 'StepStarted' || r.type === 'ExecutionAdmitted') && r.queuedMs !== undefined) return `  (queued ${formatDuration(r.queuedMs)})`;
  return '';
}

/** Prints transitions as they are recorded (run, resume, signal), with the fork and the join called out. */
export class TransitionPrinter {
  private lastStage?: string;
  readonly lines = new EventLines();

  constructor(private readonly write: (line: string) => void) {}

  /** The history before this command: numbering and step times carry on from it. */
  seed(records: StoredRecord[]): void {
    for (const r of records) this.lines.next(r.record);
  }

  line({ record }: StoredRecord, snapshot: WorkflowSnapshot): void {
    // Child executions (map items, workflow steps) have their own logs: their parent's records say how they went.
    if (snapshot.context.parent) return;
    let text = this.lines.line(record, false);
    if (record.type === 'ExecutionStarted') this.write(`execution ${record.executionId} (workflow ${record.workflowId})`);
    const stage = activeStage(snapshot);
    if (stage && stage.key !== this.lastStage && record.type !== 'ExecutionStarted') {
      const prevWasGroup = this.lastStage?.startsWith('group(');
      if (stage.parallel) text += `  ⇉ fork: ${stage.steps.map((s) => s.id).join(', ')}`;
      else if (prevWasGroup) text += `  ⇇ join → ${stage.key}`;
    } else if (!stage && this.lastStage?.startsWith('group(') && record.type === 'StepCompleted') {
      text += '  ⇇ join → end';
    }
    this.lastStage = stage?.key;
    this.write(text);
  }
}
