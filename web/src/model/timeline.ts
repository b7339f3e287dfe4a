/**
 * The Gantt of an execution from its log: one row per step, one bar per
 * attempt (from its StepStarted to its StepCompleted or StepFailed), the wait
 * of a sleep or signal step shaded as waiting, the backoff between a failed
 * attempt and the next one as its own bar. Steps of a parallel group are rows
 * of one group, so their bars stand side by side in time. Pure.
 */
import { currentDefinition, type Definition, type EventRecord } from './records.js';

export type BarKind = 'run' | 'wait' | 'backoff' | 'skipped';
export type BarOutcome = 'completed' | 'failed' | 'retrying' | 'open';

export interface Bar {
  stepId: string;
  attempt: number;
  kind: BarKind;
  outcome: BarOutcome;
  /** ms since the execution started */
  start: number;
  end: number;
  /** Still open: its end is the time the timeline was computed for. */
  open: boolean;
  seq: number;
}

export interface Row {
  stepId: string;
  type: string;
  /** Index of the parallel group the step belongs to, if any. */
  group?: number;
  bars: Bar[];
}

export interface Marker { at: number; kind: 'resume' | 'end'; label: string }

/** An idle stretch (nothing ran, nothing waited) long enough to be drawn narrow. */
export interface Gap { from: number; to: number }

export interface Timeline {
  startedAt: number;
  /** ms from start to the last record (or to `now` while running) */
  span: number;
  rows: Row[];
  markers: Marker[];
  gaps: Gap[];
}

/** An idle stretch longer than this share of the span (and than MIN_GAP_MS) is cut down to GAP_SHARE of the width. */
const GAP_MIN_SHARE = 0.2;
const MIN_GAP_MS = 1000;
const GAP_SHARE = 0.04;

const ENDS = new Set(['ExecutionCompleted', 'ExecutionFailed', 'ExecutionCancelled']);

export function buildTimeline(records: EventRecord[], now: number): Timeline {
  const startedAt = records.length ? Date.parse(records[0].at) : now;
  const rel = (at: string) => Date.parse(at) - startedAt;
  const definition = currentDefinition(records);
  const rows = new Map<string, Row>();
  const rowOf = (stepId: string): Row => {
    let row = rows.get(stepId);
    if (!row) rows.set(stepId, (row = { stepId, type: 'step', bars: [] }));
    return row;
  };
  // Rows in definition order (every definition the log carried: a resume may add steps).
  for (const r of records) {
    const def = r.type === 'ExecutionStarted' || r.type === 'ExecutionResumed' ? r.definition : undefined;
    if (def) for (const s of def.steps) rowOf(s.id).type = s.type;
  }
  if (definition) applyGroups(definition, rows);
  // A signal step ends with its SignalReceived (no StepCompleted); one delivered before the step waits ends it as it starts.
  const signalOf = new Map<string, string>();
  for (const r of records) {
    const def = r.type === 'ExecutionStarted' || r.type === 'ExecutionResumed' ? r.definition : undefined;
    if (def) for (const s of def.steps) if (s.type === 'signal') signalOf.set(s.id, s.name ?? s.id);
  }
  const delivered = new Set<string>();

  const open = new Map<string, Bar>();
  const markers: Marker[] = [];
  let last = 0;
  let ended = false;
  for (const r of records) {
    const t = rel(r.at);
    last = Math.max(last, t);
    switch (r.type) {
      case 'StepStarted': {
        const row = rowOf(r.stepId);
        const backoff = open.get(r.stepId);
        if (backoff?.kind === 'backoff') closeBar(backoff, t, 'completed');
        const waits = row.type === 'sleep' || row.type === 'signal' || r.wakeAt !== undefined;
        const bar: Bar = { stepId: r.stepId, attempt: r.attempt, kind: waits ? 'wait' : 'run', outcome: 'open', start: t, end: t, open: true, seq: r.seq };
        row.bars.push(bar);
        const signal = signalOf.get(r.stepId);
        if (signal !== undefined && delivered.delete(signal)) closeBar(bar, t, 'completed');
        else open.set(r.stepId, bar);
        break;
      }
      case 'SignalReceived': {
        const waiting = [...open.values()].find((b) => b.kind === 'wait' && signalOf.get(b.stepId) === r.name);
        if (waiting) {
          closeBar(waiting, t, 'completed');
          open.delete(waiting.stepId);
        } else delivered.add(r.name);
        break;
      }
      case 'StepCompleted': {
        const bar = open.get(r.stepId);
        if (bar && bar.kind !== 'backoff') closeBar(bar, t, 'completed');
        else rowOf(r.stepId).bars.push({ stepId: r.stepId, attempt: r.attempt ?? 0, kind: 'skipped', outcome: 'completed', start: t, end: t, open: false, seq: r.seq });
        open.delete(r.stepId);
        break;
      }
      case 'StepFailed': {
        const bar = open.get(r.stepId);
        const retrying = r.retryInMs !== undefined;
        if (bar && bar.kind !== 'backoff') closeBar(bar, t, retrying ? 'retrying' : 'failed');
        else rowOf(r.stepId).bars.push({ stepId: r.stepId, attempt: r.attempt, kind: 'run', outcome: 'failed', start: t, end: t, open: false, seq: r.seq });
        open.delete(r.stepId);
        if (retrying) {
          const wait: Bar = { stepId: r.stepId, attempt: r.attempt, kind: 'backoff', outcome: 'open', start: t, end: t + r.retryInMs!, open: true, seq: r.seq };
          rowOf(r.stepId).bars.push(wait);
          open.set(r.stepId, wait);
        }
        break;
      }
      case 'ExecutionResumed':
        // Attempts open before the resume were cut short: the resumed run starts them again.
        delivered.clear();
        for (const bar of open.values()) closeBar(bar, t, bar.kind === 'backoff' ? 'completed' : 'failed');
        open.clear();
        ended = false;
        markers.push({ at: t, kind: 'resume', label: r.fromStep ? `resumed from ${r.fromStep}` : r.reason === 'recovery' ? 'recovered' : 'resumed' });
        break;
      default:
        if (ENDS.has(r.type)) {
          ended = true;
          for (const bar of open.values()) closeBar(bar, t, bar.kind === 'backoff' ? 'completed' : 'failed');
          open.clear();
          markers.push({ at: t, kind: 'end', label: r.type.replace('Execution', '').toLowerCase() });
        }
    }
  }
  const end = ended ? last : Math.max(last, now - startedAt);
  for (const bar of open.values()) bar.end = Math.max(bar.end, end);
  const span = Math.max(end, ...[...rows.values()].flatMap((r) => r.bars.map((b) => b.end)), 1);
  const list = [...rows.values()];
  return { startedAt, span, rows: list, markers, gaps: idleGaps(list, markers, span) };
}

/**
 * Stretches where no bar is drawn, long enough to hide the rest (a failure
 * resumed an hour later): the axis draws them narrow, marked as cut.
 */
function idleGaps(rows: Row[], markers: Marker[], span: number): Gap[] {
  const busy = [...rows.flatMap((r) => r.bars.map((b) => [b.start, b.end] as const)), ...markers.map((m) => [m.at, m.at] as const)].sort((a, b) => a[0] - b[0]);
  const gaps: Gap[] = [];
  const min = Math.max(MIN_GAP_MS, span * GAP_MIN_SHARE);
  let reached = 0;
  for (const [start, end] of busy) {
    if (start - reached > min) gaps.push({ from: reached, to: start });
    reached = Math.max(reached, end);
  }
  return gaps;
}

/** Where time `t` (ms since the start) is drawn, from 0 to 1, idle gaps narrowed. */
export function positionOf(timeline: Pick<Timeline, 'span' | 'gaps'>, t: number): number {
  const { span, gaps } = timeline;
  if (!gaps.length) return t / span;
  const share = Math.min(GAP_SHARE, 0.3 / gaps.length);
  const idle = gaps.reduce((sum, g) => sum + (g.to - g.from), 0);
  const drawn = (span - idle) / (1 - share * gaps.length); // the whole width, in ms of drawn time
  const gapLength = share * drawn;
  let x = 0;
  let at = 0;
  for (const g of gaps) {
    if (t <= g.from) return (x + (t - at)) / drawn;
    x += g.from - at;
    if (t < g.to) return (x + ((t - g.from) / (g.to - g.from)) * gapLength) / drawn;
    x += gapLength;
    at = g.to;
  }
  return (x + (t - at)) / drawn;
}

function closeBar(bar: Bar, t: number, outcome: BarOutcome): void {
  bar.end = Math.max(t, bar.start);
  bar.outcome = outcome;
  bar.open = false;
}

function applyGroups(def: Definition, rows: Map<string, Row>): void {
  def.parallel.forEach((group, gi) => group.forEach((id) => {
    const row = rows.get(id);
    if (row) row.group = gi;
  }));
}
