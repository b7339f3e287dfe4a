/**
 * Durable timers in the pure layer and in validation: a sleep waits as a
 * `waiting` step with its wake time in the context; a timer's event applies
 * only to the attempt that waits; histories recorded before timers (a sleep
 * without `wakeAt`) replay as before; recovery keeps a step waiting on a
 * recorded timer; and `sleep` takes a template, an ISO time, and more than 24 h.
 */
import { describe, expect, it } from 'vitest';
import { applyEvent, initialSnapshot, resumeSnapshot, statusOf, stepPhases, type WorkflowEvent, type WorkflowSnapshot } from '../../machines/index.js';
import type { Definition } from '../../machines/definition.js';
import { planSleep } from '../../src/definition/sleep.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { DefinitionError, StepError } from '../../src/errors.js';

const def = (d: unknown): Definition => validateDefinition(d);

function drive(definition: Definition, events: WorkflowEvent[]): WorkflowSnapshot {
  let snap = initialSnapshot('x', definition);
  const checkpoints = new Map<number, WorkflowSnapshot>();
  events.forEach((e, i) => {
    const next = applyEvent(snap, e, checkpoints, i);
    if (next === snap) throw new Error(`refused: ${e.type}`);
    snap = next;
  });
  return snap;
}
const refuses = (snap: WorkflowSnapshot, e: WorkflowEvent) => expect(snap.can(e)).toBe(false);

const WAKE = '2030-01-01T00:00:00.000Z';
const nap = def({ id: 'nap', steps: [{ id: 'nap', type: 'sleep', durationMs: 1000 }, { id: 'after', type: 'transform', value: 1 }] });
const started: WorkflowEvent = { type: 'ExecutionStarted', definition: nap, input: {} };

describe('the machine and durable timers', () => {
  it('a sleep with a recorded wake time waits (WAITING) and keeps the time in its context', () => {
    const snap = drive(nap, [started, { type: 'StepStarted', stepId: 'nap', attempt: 1, wakeAt: WAKE, durationMs: 1000 }]);
    expect(snap.value).toEqual({ running: { nap: 'waiting' } });
    expect(statusOf(snap)).toBe('WAITING');
    expect(snap.context.timers).toEqual({ nap: { at: WAKE, attempt: 1, durationMs: 1000 } });
    const done = drive(nap, [started, { type: 'StepStarted', stepId: 'nap', attempt: 1, wakeAt: WAKE, durationMs: 1000 }, { type: 'StepCompleted', stepId: 'nap', attempt: 1, output: { sleptMs: 1000 }, lateMs: 3 }]);
    expect(stepPhases(done).nap).toBe('done');
  });

  it('refuses a wake-up for another attempt', () => {
    const snap = drive(nap, [started, { type: 'StepStarted', stepId: 'nap', attempt: 2, wakeAt: WAKE }]);
    refuses(snap, { type: 'StepCompleted', stepId: 'nap', attempt: 1, output: null });
    refuses(snap, { type: 'StepCompleted', stepId: 'nap', output: null });
  });

  it('a sleep recorded before timers (no wakeAt) runs as it did: a history of those days replays unchanged', () => {
    const snap = drive(nap, [started, { type: 'StepStarted', stepId: 'nap', attempt: 1 }]);
    expect(snap.value).toEqual({ running: { nap: 'running' } });
    expect(statusOf(snap)).toBe('RUNNING');
    expect(stepPhases(drive(nap, [started, { type: 'StepStarted', stepId: 'nap', attempt: 1 }, { type: 'StepCompleted', stepId: 'nap', attempt: 1, output: { sleptMs: 1000 } }])).nap).toBe('done');
  });

  it('a signal timeout applies only to the attempt that waits; after the signal it is refused', () => {
    const d = def({ id: 'approve', steps: [{ id: 'ok', type: 'signal', timeoutMs: 1000, retry: { maxAttempts: 3 } }] });
    const timeout = (attempt: number): WorkflowEvent => ({ type: 'StepFailed', stepId: 'ok', attempt, error: { code: 'TIMEOUT', message: 'late', retryable: true }, lateMs: 0 });
    const s0: WorkflowEvent = { type: 'ExecutionStarted', definition: d, input: {} };
    const waiting = drive(d, [s0, { type: 'StepStarted', stepId: 'ok', attempt: 1, deadline: WAKE }]);
    expect(waiting.context.timers?.ok).toEqual({ at: WAKE, attempt: 1 });
    expect(waiting.can(timeout(1))).toBe(true);
    refuses(waiting, timeout(2));
    const signalled = drive(d, [s0, { type: 'StepStarted', stepId: 'ok', attempt: 1, deadline: WAKE }, { type: 'SignalReceived', name: 'ok', payload: 1, stepId: 'ok' }]);
    refuses(signalled, timeout(1));
    // Retried: the first attempt's late timeout is refused, the second's applies.
    const retried = drive(d, [s0, { type: 'StepStarted', stepId: 'ok', attempt: 1, deadline: WAKE }, timeout(1), { type: 'StepStarted', stepId: 'ok', attempt: 2, deadline: WAKE }]);
    refuses(retried, timeout(1));
    expect(retried.can(timeout(2))).toBe(true);
  });

  it('recovery keeps a step waiting on its recorded timer; a resume from a step starts it again', () => {
    const d = def({ id: 'group', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'nap', type: 'sleep', durationMs: 5 }, { id: 'call', type: 'transform', value: 2 }], parallel: [['nap', 'call']] });
    const snap = drive(d, [
      { type: 'ExecutionStarted', definition: d, input: {} },
      { type: 'StepStarted', stepId: 'a', attempt: 1 },
      { type: 'StepCompleted', stepId: 'a', attempt: 1, output: 1 },
      { type: 'StepStarted', stepId: 'nap', attempt: 1, wakeAt: WAKE, durationMs: 5 },
      { type: 'StepStarted', stepId: 'call', attempt: 1 },
    ]);
    const recovered = resumeSnapshot(snap, { definition: d, recovery: true });
    expect(stepPhases(recovered)).toMatchObject({ nap: 'waiting', call: 'pending' });
    expect(recovered.context.timers?.nap.at).toBe(WAKE);
    expect(stepPhases(resumeSnapshot(snap, { definition: d, fromStep: 'nap' }))).toMatchObject({ nap: 'pending', call: 'pending' });
  });
});

describe('sleep definitions', () => {
  const issues = (doc: unknown) => {
    try { validateDefinition(doc); return []; } catch (err) { return (err as DefinitionError).issues; }
  };
  const sleep = (fields: Record<string, unknown>) => ({ id: 'w', steps: [{ id: 's', type: 'sleep', ...fields }] });

  it('accepts durationMs as a number above 24 h, as a template, and until as an ISO time, a date or a template', () => {
    expect(issues(sleep({ durationMs: 30 * 86_400_000 }))).toEqual([]);
    expect(issues({ id: 'w', steps: [{ id: 's', type: 'sleep', durationMs: '{{input.ms}}' }] })).toEqual([]);
    expect(issues(sleep({ until: '2030-01-31T09:00:00Z' }))).toEqual([]);
    expect(issues(sleep({ until: '2030-01-31T09:00:00.250+02:00' }))).toEqual([]);
    expect(issues(sleep({ until: '2030-01-31' }))).toEqual([]);
    expect(issues(sleep({ until: '{{input.at}}' }))).toEqual([]);
  });

  it('refuses what is not a duration or a time, naming the field', () => {
    expect(issues(sleep({}))).toEqual([{ path: 'steps[0].durationMs', message: expect.stringMatching(/durationMs .* or until/) }]);
    expect(issues(sleep({ durationMs: 5, until: '2030-01-31' }))).toEqual([{ path: 'steps[0].until', message: 'give either durationMs or until, not both' }]);
    expect(issues(sleep({ until: 'tomorrow' }))[0]).toMatchObject({ path: 'steps[0].until', message: expect.stringMatching(/'tomorrow' is not an ISO-8601 time/) });
    // A time without a zone would be a different instant on each worker.
    expect(issues(sleep({ until: '2030-01-31T09:00:00' }))[0]).toMatchObject({ path: 'steps[0].until' });
    expect(issues(sleep({ durationMs: 'soon' }))[0]).toMatchObject({ path: 'steps[0].durationMs' });
    expect(issues(sleep({ durationMs: -1 }))[0]).toMatchObject({ path: 'steps[0].durationMs' });
    expect(issues(sleep({ durationMs: '{{steps.later.output}}' }))[0]).toMatchObject({ path: 'steps[0].durationMs', message: expect.stringMatching(/unknown step 'later'/) });
  });

  it('plans the wake time from now; a time already past wakes at once; a template that gave no number fails INVALID_SLEEP', () => {
    const now = Date.parse('2030-01-01T00:00:00.000Z');
    const step = (f: Record<string, unknown>) => ({ id: 's', type: 'sleep', onError: 'fail', ...f }) as never;
    expect(planSleep(step({ durationMs: 90_000 }), now)).toEqual({ wakeAt: '2030-01-01T00:01:30.000Z', durationMs: 90_000 });
    expect(planSleep(step({ until: '2030-01-02T02:00:00+02:00' }), now)).toEqual({ wakeAt: '2030-01-02T00:00:00.000Z', durationMs: 86_400_000 });
    expect(planSleep(step({ until: '2030-01-02' }), now)).toEqual({ wakeAt: '2030-01-02T00:00:00.000Z', durationMs: 86_400_000 });
    expect(planSleep(step({ until: '2029-12-31T00:00:00Z' }), now)).toEqual({ wakeAt: '2030-01-01T00:00:00.000Z', durationMs: 0 });
    expect(() => planSleep(step({ durationMs: '5' }), now)).toThrow(StepError);
    expect(() => planSleep(step({ durationMs: '5' }), now)).toThrow(/durationMs must be a whole number of milliseconds .* it is "5"/);
    expect(() => planSleep(step({ until: 42 }), now)).toThrow(/until must be an ISO-8601 time/);
  });
});
