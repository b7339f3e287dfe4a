/**
 * The explorer's Gantt model (web/src/model/timeline.ts), pure: bars per
 * attempt from the records' times, backoff between attempts, waits, skips,
 * resumes, and bars still open at the time it is drawn.
 */
import { describe, expect, it } from 'vitest';
import { buildTimeline, positionOf } from '../../web/src/model/timeline.js';
import type { EventRecord } from '../../web/src/model/records.js';

const T0 = Date.parse('2026-01-01T00:00:00.000Z');
let seq = 0;
const rec = (ms: number, body: Record<string, unknown>): EventRecord =>
  ({ seq: ++seq, executionId: 'e', workflowId: 'w', at: new Date(T0 + ms).toISOString(), state: null, hash: '', ...body }) as unknown as EventRecord;

const definition = {
  id: 'w',
  steps: [
    { id: 'a', type: 'transform', value: 1 },
    { id: 'b', type: 'fail', message: 'x', retryable: true, retry: { maxAttempts: 2, initialDelayMs: 100, backoffRate: 2, maxDelayMs: 1000 } },
    { id: 'c', type: 'sleep', durationMs: 50 },
    { id: 'd', type: 'transform', value: 2, when: '{{input.no}}' },
  ],
  parallel: [['b', 'c']],
};

describe('the explorer timeline', () => {
  it('draws a bar per attempt, the backoff between attempts, waits, skips and the parallel group', () => {
    const t = buildTimeline(
      [
        rec(0, { type: 'ExecutionStarted', definition, input: {} }),
        rec(10, { type: 'StepStarted', stepId: 'a', attempt: 1 }),
        rec(20, { type: 'StepCompleted', stepId: 'a', attempt: 1, output: 1 }),
        rec(30, { type: 'StepStarted', stepId: 'b', attempt: 1 }),
        rec(31, { type: 'StepStarted', stepId: 'c', attempt: 1, wakeAt: new Date(T0 + 81).toISOString(), durationMs: 50 }),
        rec(40, { type: 'StepFailed', stepId: 'b', attempt: 1, error: { code: 'X', message: 'x', retryable: true }, retryInMs: 100 }),
        rec(85, { type: 'StepCompleted', stepId: 'c', attempt: 1, output: {} }),
        rec(140, { type: 'StepStarted', stepId: 'b', attempt: 2 }),
        rec(150, { type: 'StepCompleted', stepId: 'b', attempt: 2, output: 'ok' }),
        rec(160, { type: 'StepCompleted', stepId: 'd', output: null, skipped: true }),
        rec(170, { type: 'ExecutionCompleted', output: {} }),
      ],
      T0 + 10_000,
    );
    const row = (id: string) => t.rows.find((r) => r.stepId === id)!;
    expect(t.rows.map((r) => [r.stepId, r.type, r.group])).toEqual([['a', 'transform', undefined], ['b', 'fail', 0], ['c', 'sleep', 0], ['d', 'transform', undefined]]);
    expect(row('b').bars.map((b) => [b.kind, b.attempt, b.start, b.end, b.outcome])).toEqual([
      ['run', 1, 30, 40, 'retrying'],
      ['backoff', 1, 40, 140, 'completed'],
      ['run', 2, 140, 150, 'completed'],
    ]);
    expect(row('c').bars.map((b) => [b.kind, b.start, b.end])).toEqual([['wait', 31, 85]]);
    expect(row('d').bars.map((b) => [b.kind, b.start, b.end])).toEqual([['skipped', 160, 160]]);
    // Ended: the span stops at the end record, not at `now`.
    expect(t.span).toBe(170);
    expect(t.markers).toEqual([{ at: 170, kind: 'end', label: 'completed' }]);
  });

  it('keeps a running attempt open up to now, and closes what a resume cut short', () => {
    const running = buildTimeline(
      [rec(0, { type: 'ExecutionStarted', definition, input: {} }), rec(10, { type: 'StepStarted', stepId: 'a', attempt: 1 })],
      T0 + 500,
    );
    expect(running.rows[0].bars).toMatchObject([{ start: 10, end: 500, open: true, outcome: 'open' }]);
    expect(running.span).toBe(500);

    const resumed = buildTimeline(
      [
        rec(0, { type: 'ExecutionStarted', definition, input: {} }),
        rec(10, { type: 'StepStarted', stepId: 'a', attempt: 1 }),
        rec(20, { type: 'StepFailed', stepId: 'a', attempt: 1, error: { code: 'X', message: 'x', retryable: false } }),
        rec(30, { type: 'ExecutionFailed', stepId: 'a', error: { code: 'X', message: 'x', retryable: false } }),
        rec(1000, { type: 'ExecutionResumed', checkpointSeq: 1, fromStep: 'a', reason: 'resume' }),
        rec(1010, { type: 'StepStarted', stepId: 'a', attempt: 1 }),
      ],
      T0 + 1500,
    );
    expect(resumed.rows[0].bars.map((b) => [b.start, b.end, b.outcome])).toEqual([[10, 20, 'failed'], [1010, 1500, 'open']]);
    expect(resumed.markers.map((m) => [m.kind, m.at, m.label])).toEqual([['end', 30, 'failed'], ['resume', 1000, 'resumed from a']]);
  });

  it('ends a signal step\'s wait when its signal arrives, and at once when the signal came first', () => {
    const def = {
      id: 'w',
      steps: [
        { id: 'early', type: 'signal', name: 'go' },
        { id: 'late', type: 'signal' },
      ],
      parallel: [],
    };
    const t = buildTimeline(
      [
        rec(0, { type: 'ExecutionStarted', definition: def, input: {} }),
        rec(5, { type: 'SignalReceived', name: 'go', payload: {} }),
        rec(10, { type: 'StepStarted', stepId: 'early', attempt: 1 }),
        rec(20, { type: 'StepStarted', stepId: 'late', attempt: 1 }),
        rec(500, { type: 'SignalReceived', name: 'late', stepId: 'late', payload: {} }),
        rec(510, { type: 'ExecutionCompleted', output: {} }),
      ],
      T0 + 10_000,
    );
    expect(t.rows.map((r) => r.bars.map((b) => [b.kind, b.start, b.end, b.outcome]))).toEqual([[['wait', 10, 10, 'completed']], [['wait', 20, 500, 'completed']]]);
  });

  it('draws a long idle stretch narrow, keeping the order of everything', () => {
    const t = buildTimeline(
      [
        rec(0, { type: 'ExecutionStarted', definition, input: {} }),
        rec(10, { type: 'StepStarted', stepId: 'a', attempt: 1 }),
        rec(20, { type: 'StepFailed', stepId: 'a', attempt: 1, error: { code: 'X', message: 'x', retryable: false } }),
        rec(30, { type: 'ExecutionFailed', stepId: 'a', error: { code: 'X', message: 'x', retryable: false } }),
        rec(3_600_000, { type: 'ExecutionResumed', checkpointSeq: 1, fromStep: 'a', reason: 'resume' }),
        rec(3_600_010, { type: 'StepStarted', stepId: 'a', attempt: 1 }),
        rec(3_600_040, { type: 'StepCompleted', stepId: 'a', attempt: 1, output: 1 }),
        rec(3_600_050, { type: 'ExecutionCompleted', output: 1 }),
      ],
      T0,
    );
    expect(t.gaps).toEqual([{ from: 30, to: 3_600_000 }]);
    const x = (ms: number) => positionOf(t, ms);
    expect(x(0)).toBe(0);
    expect(x(t.span)).toBeCloseTo(1, 9);
    expect(x(3_600_000) - x(30)).toBeCloseTo(0.04, 9); // the hour is 4% of the width
    // Outside the gap, time keeps one scale: the 30 ms attempt is three times the 10 ms one.
    expect((x(3_600_040) - x(3_600_010)) / (x(20) - x(10))).toBeCloseTo(3, 9);
    const samples = [0, 10, 20, 30, 1000, 1_800_000, 3_600_000, 3_600_010, 3_600_050];
    expect(samples.map(x)).toEqual([...samples.map(x)].sort((a, b) => a - b));
  });
});
