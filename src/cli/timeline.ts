/**
 * The timeline of an execution from its log: every step attempt as a span
 * (running, or waiting for a sleep or a signal), the backoff before a retry,
 * and a Gantt chart of them for the terminal. Pure: the records and the time
 * "now" (for what still runs) come in.
 */
import type { Definition } from '../../machines/definition.js';
import type { LogRecord, StoredRecord } from '../log/records.js';
import { formatDuration } from './format.js';

export type SpanEnd = 'completed' | 'failed' | 'skipped' | 'open' | 'interrupted';

export interface Attempt {
  stepId: string;
  attempt: number;
  /** Waiting on a durable timer or a signal rather than working. */
  waiting: boolean;
  start: number;
  end: number;
  ended: SpanEnd;
  /** The backoff before this attempt: from the previous attempt's failure. */
  backoffFrom?: number;
  error?: string;
}

/** The definition in force at the end of the log (a resume may have replaced the steps). */
export function definitionOf(records: StoredRecord[]): Definition | undefined {
  let def: Definition | undefined;
  for (const { record } of records) {
    if (record.type === 'ExecutionStarted') def = record.definition;
    if (record.type === 'ExecutionResumed' && record.definition) def = record.definition;
  }
  return def;
}

export function attemptsOf(records: StoredRecord[], now: number): Attempt[] {
  const typeOf = new Map<string, string>();
  const attempts: Attempt[] = [];
  const open = new Map<string, Attempt>();
  const failedAt = new Map<string, number>();
  const last = records.length ? Date.parse(records[records.length - 1].record.at) : now;
  let ended = false;
  for (const { record } of records) {
    if (record.type === 'ExecutionStarted' || (record.type === 'ExecutionResumed' && record.definition)) {
      for (const s of (record.definition as Definition).steps) typeOf.set(s.id, s.type);
    }
    const at = Date.parse(record.at);
    const r = record as LogRecord & { stepId?: string; attempt?: number; skipped?: boolean; error?: { message: string } };
    switch (record.type) {
      case 'StepStarted': {
        const previous = open.get(r.stepId!);
        if (previous) Object.assign(previous, { end: at, ended: 'interrupted' }); // a recovery restarted it
        const a: Attempt = { stepId: r.stepId!, attempt: r.attempt ?? 1, waiting: typeOf.get(r.stepId!) === 'sleep' || typeOf.get(r.stepId!) === 'signal', start: at, end: at, ended: 'open', ...(failedAt.has(r.stepId!) ? { backoffFrom: failedAt.get(r.stepId!) } : {}) };
        failedAt.delete(r.stepId!);
        open.set(r.stepId!, a);
        attempts.push(a);
        break;
      }
      case 'StepCompleted':
      case 'StepFailed': {
        const a = open.get(r.stepId!);
        open.delete(r.stepId!);
        const how: SpanEnd = record.type === 'StepFailed' ? 'failed' : r.skipped ? 'skipped' : 'completed';
        if (a) Object.assign(a, { end: at, ended: how, ...(r.error ? { error: r.error.message } : {}) });
        else attempts.push({ stepId: r.stepId!, attempt: r.attempt ?? 1, waiting: false, start: at, end: at, ended: how, ...(r.error ? { error: r.error.message } : {}) });
        if (record.type === 'StepFailed') failedAt.set(r.stepId!, at);
        break;
      }
      case 'ExecutionResumed':
        failedAt.clear(); // a resume starts its steps afresh: no backoff before them
        break;
      case 'ExecutionCompleted':
      case 'ExecutionFailed':
      case 'ExecutionCancelled':
        ended = true;
        break;
      default:
        break;
    }
  }
  // Still running at the end of the log: up to now while the execution goes on, else up to its end.
  for (const a of open.values()) a.end = ended ? last : Math.max(now, a.start);
  return attempts;
}

export interface GanttOptions {
  now: number;
  /** Columns for the whole line (the terminal's width). */
  columns: number;
}

const RUN = '█';
const WAIT = '░';
const BACKOFF = '·';

/** The Gantt chart: a header, one row per attempt on a common time axis, a legend. */
export function ganttLines(records: StoredRecord[], { now, columns }: GanttOptions): string[] {
  const attempts = attemptsOf(records, now);
  if (records.length === 0) return [];
  const t0 = Date.parse(records[0].record.at);
  const t1 = Math.max(t0 + 1, ...attempts.map((a) => a.end), Date.parse(records[records.length - 1].record.at));
  const labels = attempts.map((a) => (a.attempt > 1 ? `${a.stepId} #${a.attempt}` : a.stepId));
  const labelWidth = Math.min(28, Math.max(4, ...labels.map((l) => l.length)));
  const width = Math.max(10, columns - labelWidth - 24);
  const at = (t: number) => Math.floor(((t - t0) / (t1 - t0)) * width);
  const col = (t: number) => Math.min(width - 1, at(t)); // where something starts
  const endCol = (t: number) => Math.min(width, at(t)); // where it ends (exclusive): the very end fills the last column
  const rows = attempts.map((a, i) => {
    const bar = Array<string>(width).fill(' ');
    if (a.backoffFrom !== undefined) for (let c = col(a.backoffFrom); c < col(a.start); c++) bar[c] = BACKOFF;
    const from = col(a.start);
    const to = Math.max(from + 1, endCol(a.end));
    for (let c = from; c < to; c++) bar[c] = a.waiting ? WAIT : RUN;
    const mark = a.ended === 'failed' ? ` ✗ ${a.error ?? ''}` : a.ended === 'skipped' ? ' skipped' : a.ended === 'open' ? ' …' : a.ended === 'interrupted' ? ' (interrupted)' : '';
    const duration = a.ended === 'skipped' ? '' : formatDuration(a.end - a.start);
    return `${labels[i].slice(0, labelWidth).padEnd(labelWidth)} │${bar.join('')}│ ${duration.padStart(8)}${mark}`;
  });
  const axisEnd = formatDuration(t1 - t0);
  return [
    `${''.padEnd(labelWidth)} 0${axisEnd.padStart(width + 1)}`,
    ...rows,
    `${''.padEnd(labelWidth)}  ${RUN} running  ${WAIT} waiting (sleep, signal)  ${BACKOFF} backoff before a retry  ✗ failed`,
  ];
}
