/**
 * The pure workflow machine (machines/): compiled from definitions of every
 * shape and driven with the recorded events through `applyEvent`, with no
 * NATS and no executors. Checks the state values the log records, the step
 * lifecycle (retry, backoff, exhaustion, onError, when-skips), signal
 * buffering, the retry delays, rebuilding for a resume, and folding a log.
 */
import { describe, expect, it } from 'vitest';
import {
  allStepsDone,
  applyEvent,
  canRetry,
  END_STATE,
  finalOutput,
  foldEvents,
  initialSnapshot,
  planStages,
  resumeSnapshot,
  retryDelayMs,
  statusOf,
  stepPhases,
  type ErrorInfo,
  type RecordedEvent,
  type WorkflowEvent,
  type WorkflowSnapshot,
} from '../../machines/index.js';
import type { Definition } from '../../machines/definition.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { DefinitionError, InvalidExecutionStateError, StepNotFoundError } from '../../src/errors.js';
import { plainContext } from '../support/context.js';

const def = (d: unknown): Definition => validateDefinition(d);
const t = (id: string, extra: Record<string, unknown> = {}) => ({ id, type: 'transform', value: id, ...extra });
const retryable: ErrorInfo = { code: 'HTTP_503', message: 'unavailable', retryable: true };
const fatal: ErrorInfo = { code: 'HTTP_400', message: 'bad request', retryable: false };

/** Drive a snapshot with events, as the worker would record them. */
class Drive {
  snap: WorkflowSnapshot;
  readonly checkpoints = new Map<number, WorkflowSnapshot>();
  constructor(readonly definition: Definition, input: unknown = {}) {
    this.snap = initialSnapshot('exec-1', definition);
    this.send({ type: 'ExecutionStarted', definition, input });
  }
  send(event: WorkflowEvent): this {
    expect(this.snap.can(event), `${event.type} ${'stepId' in event ? event.stepId : ''} should apply in ${JSON.stringify(this.snap.value)}`).toBe(true);
    this.snap = applyEvent(this.snap, event, this.checkpoints, 0);
    return this;
  }
  start(stepId: string, attempt = 1) { return this.send({ type: 'StepStarted', stepId, attempt }); }
  complete(stepId: string, output: unknown = stepId, attempt = 1) { return this.send({ type: 'StepCompleted', stepId, attempt, output }); }
  fail(stepId: string, error: ErrorInfo, attempt = 1) { return this.send({ type: 'StepFailed', stepId, attempt, error }); }
  run(stepId: string, output: unknown = stepId) { return this.start(stepId).complete(stepId, output); }
  get value() { return this.snap.value; }
  get status() { return statusOf(this.snap); }
  get phases() { return stepPhases(this.snap); }
  get ctx() { return plainContext(this.snap.context); }
}

describe('compiled shapes and their state values', () => {
  it('sequential steps: one state per step under running', () => {
    const d = new Drive(def({ id: 'w', steps: [t('a'), t('b')] }));
    expect(d.value).toEqual({ running: { a: 'pending' } });
    expect(d.status).toBe('RUNNING');
    d.start('a');
    expect(d.value).toEqual({ running: { a: 'running' } });
    d.complete('a');
    expect(d.value).toEqual({ running: { b: 'pending' } });
    expect(d.phases).toEqual({ a: 'done', b: 'pending' });
    d.run('b');
    expect(d.value).toEqual({ running: END_STATE });
    expect(allStepsDone(d.snap)).toBe(true);
    expect(finalOutput(d.snap)).toBe('b');
    d.send({ type: 'ExecutionCompleted', output: 'b' });
    expect(d.value).toBe('completed');
    expect(d.status).toBe('COMPLETED');
    expect(d.ctx.output).toBe('b');
    expect(d.ctx.outputs).toEqual({ a: 'a', b: 'b' });
  });

  it('the initial snapshot is pending', () => {
    const s = initialSnapshot('e', def({ id: 'w', steps: [t('a')] }));
    expect(s.value).toBe('pending');
    expect(statusOf(s)).toBe('PENDING');
  });

  it('fork-join A → {B,C,D} → E: a parallel state with one region per branch, joined when all are done', () => {
    const definition = def({ id: 'w', steps: [t('a'), t('b'), t('c'), t('d'), t('e')], parallel: [['b', 'c', 'd']] });
    expect(planStages(definition).map((s) => s.key)).toEqual(['a', 'group(b,c,d)', 'e']);
    const d = new Drive(definition).run('a');
    expect(d.value).toEqual({ running: { 'group(b,c,d)': { b: 'pending', c: 'pending', d: 'pending' } } });
    d.start('b').start('c').start('d');
    expect(d.value).toEqual({ running: { 'group(b,c,d)': { b: 'running', c: 'running', d: 'running' } } });
    d.complete('c');
    expect(d.value).toEqual({ running: { 'group(b,c,d)': { b: 'running', c: 'done', d: 'running' } } });
    // e cannot start before the join
    expect(d.snap.can({ type: 'StepStarted', stepId: 'e', attempt: 1 })).toBe(false);
    d.complete('d').complete('b');
    expect(d.value).toEqual({ running: { e: 'pending' } });
    d.run('e');
    expect(d.value).toEqual({ running: END_STATE });
  });

  it('a group at the start and at the end; the final output of an ending group is a map', () => {
    const d = new Drive(def({ id: 'w', steps: [t('a'), t('b'), t('c'), t('d'), t('e')], parallel: [['a', 'b'], ['d', 'e']] }));
    expect(d.value).toEqual({ running: { 'group(a,b)': { a: 'pending', b: 'pending' } } });
    d.run('b').run('a').run('c');
    expect(d.value).toEqual({ running: { 'group(d,e)': { d: 'pending', e: 'pending' } } });
    d.run('e').run('d');
    expect(d.value).toEqual({ running: END_STATE });
    expect(finalOutput(d.snap)).toEqual({ d: 'd', e: 'e' });
  });

  it('a group of one is a parallel state too', () => {
    const d = new Drive(def({ id: 'w', steps: [t('a'), t('b'), t('c')], parallel: [['b']] })).run('a');
    expect(d.value).toEqual({ running: { 'group(b)': { b: 'pending' } } });
    d.run('b');
    expect(d.value).toEqual({ running: { c: 'pending' } });
  });

  it('two adjacent groups stay two stages', () => {
    const definition = def({ id: 'w', steps: [t('a'), t('b'), t('c'), t('d')], parallel: [['a', 'b'], ['c', 'd']] });
    expect(planStages(definition).map((s) => s.key)).toEqual(['group(a,b)', 'group(c,d)']);
  });

  it('events for another step, or out of order, do not apply', () => {
    const d = new Drive(def({ id: 'w', steps: [t('a'), t('b')] }));
    expect(d.snap.can({ type: 'StepStarted', stepId: 'b', attempt: 1 })).toBe(false);
    expect(d.snap.can({ type: 'StepCompleted', stepId: 'a', output: 1 })).toBe(false); // not started, not a skip
    expect(d.snap.can({ type: 'ExecutionCompleted', output: null })).toBe(false);
    expect(d.snap.can({ type: 'ExecutionStarted', definition: d.definition, input: {} })).toBe(false);
  });

  it('ExecutionFailed and ExecutionCancelled end a running execution', () => {
    const failed = new Drive(def({ id: 'w', steps: [t('a')] })).start('a').send({ type: 'ExecutionFailed', stepId: 'a', error: fatal });
    expect(failed.value).toBe('failed');
    expect(failed.status).toBe('FAILED');
    expect(failed.ctx.error).toEqual(fatal);
    const cancelled = new Drive(def({ id: 'w', steps: [t('a')] })).start('a').send({ type: 'ExecutionCancelled', reason: 'user' });
    expect(cancelled.value).toBe('cancelled');
    expect(cancelled.status).toBe('CANCELLED');
    expect(cancelled.snap.can({ type: 'StepCompleted', stepId: 'a', attempt: 1, output: 1 })).toBe(false);
  });
});

describe('step lifecycle', () => {
  const withRetry = (extra: Record<string, unknown> = {}) =>
    def({ id: 'w', steps: [t('a', { retry: { maxAttempts: 3, initialDelayMs: 10, backoffRate: 2, maxDelayMs: 1000 }, ...extra }), t('b')] });

  it('a retryable failure goes to backoff, and the next attempt runs again', () => {
    const d = new Drive(withRetry()).start('a').fail('a', retryable, 1);
    expect(d.value).toEqual({ running: { a: 'backoff' } });
    expect(d.phases.a).toBe('backoff');
    expect(d.status).toBe('RUNNING');
    expect(d.ctx.errors.a).toEqual(retryable);
    d.start('a', 2);
    expect(d.value).toEqual({ running: { a: 'running' } });
    expect(d.ctx.attempts.a).toBe(2);
    d.complete('a', 'ok', 2);
    expect(d.value).toEqual({ running: { b: 'pending' } });
    expect(d.ctx.outputs.a).toBe('ok');
  });

  it('attempts exhausted → failed', () => {
    const d = new Drive(withRetry()).start('a').fail('a', retryable, 1).start('a', 2).fail('a', retryable, 2).start('a', 3).fail('a', retryable, 3);
    expect(d.value).toEqual({ running: { a: 'failed' } });
    expect(d.phases.a).toBe('failed');
    expect(d.snap.can({ type: 'StepStarted', stepId: 'a', attempt: 4 })).toBe(false);
  });

  it('a non-retryable error fails at once, attempts left or not', () => {
    const d = new Drive(withRetry()).start('a').fail('a', fatal, 1);
    expect(d.value).toEqual({ running: { a: 'failed' } });
    expect(d.ctx.errors.a).toEqual(fatal);
  });

  it('without a retry policy a retryable error fails at once', () => {
    const d = new Drive(def({ id: 'w', steps: [t('a')] })).start('a').fail('a', retryable, 1);
    expect(d.value).toEqual({ running: { a: 'failed' } });
  });

  it('onError: continue → done, with the error as the output, and the next step runs', () => {
    const d = new Drive(def({ id: 'w', steps: [t('a', { onError: 'continue' }), t('b')] })).start('a').fail('a', fatal, 1);
    expect(d.value).toEqual({ running: { b: 'pending' } });
    expect(d.phases.a).toBe('done');
    expect(d.ctx.outputs.a).toEqual({ error: fatal });
    expect(d.ctx.errors.a).toEqual(fatal);
  });

  it('onError: continue still retries first', () => {
    const d = new Drive(def({ id: 'w', steps: [t('a', { onError: 'continue', retry: { maxAttempts: 2 } }), t('b')] })).start('a').fail('a', retryable, 1);
    expect(d.value).toEqual({ running: { a: 'backoff' } });
    d.start('a', 2).fail('a', retryable, 2);
    expect(d.value).toEqual({ running: { b: 'pending' } });
    expect(d.ctx.outputs.a).toEqual({ error: retryable });
  });

  it('onError: continue inside a parallel group lets the join happen', () => {
    const d = new Drive(def({ id: 'w', steps: [t('a', { onError: 'continue' }), t('b'), t('c')], parallel: [['a', 'b']] }));
    d.start('a').start('b').fail('a', fatal).complete('b');
    expect(d.value).toEqual({ running: { c: 'pending' } });
  });

  it('a `when` skip is a StepCompleted marked skipped, straight from pending', () => {
    const d = new Drive(def({ id: 'w', steps: [t('a', { when: '{{input.go}}' }), t('b')] }));
    d.send({ type: 'StepCompleted', stepId: 'a', output: null, skipped: true });
    expect(d.value).toEqual({ running: { b: 'pending' } });
    expect(d.phases.a).toBe('done');
    expect(d.ctx.outputs.a).toBeNull();
    expect(d.ctx.attempts.a).toBeUndefined(); // it never started
  });

  it('a step that fails before it starts (template, budget) fails from pending', () => {
    const d = new Drive(def({ id: 'w', steps: [t('a'), t('b')] })).fail('a', { code: 'BUDGET_EXCEEDED', message: 'spent', retryable: false });
    expect(d.value).toEqual({ running: { a: 'failed' } });
  });
});

describe('signals', () => {
  const signals = def({
    id: 'w',
    steps: [t('a'), { id: 's1', type: 'signal' }, { id: 's2', type: 'signal', name: 'go2' }, t('z')],
    parallel: [['s1', 's2']],
  });

  it('a waiting step completes with the payload of its signal', () => {
    const d = new Drive(def({ id: 'w', steps: [{ id: 'approve', type: 'signal' }, t('z')] })).start('approve');
    expect(d.value).toEqual({ running: { approve: 'waiting' } });
    expect(d.status).toBe('WAITING');
    d.send({ type: 'SignalReceived', name: 'approve', payload: { by: 'ana' }, stepId: 'approve' });
    expect(d.value).toEqual({ running: { z: 'pending' } });
    expect(d.ctx.outputs.approve).toEqual({ by: 'ana' });
    expect(d.ctx.signals).toEqual({});
  });

  it('an early signal is buffered and completes its step as soon as it starts', () => {
    const d = new Drive(signals);
    d.send({ type: 'SignalReceived', name: 'go2', payload: { p: 2 }, stepId: 's2' });
    expect(d.value).toEqual({ running: { a: 'pending' } }); // nothing moved
    expect(d.ctx.signals).toEqual({ go2: { p: 2 } });
    d.run('a').start('s2');
    expect(d.value).toEqual({ running: { 'group(s1,s2)': { s1: 'pending', s2: 'done' } } });
    expect(d.ctx.outputs.s2).toEqual({ p: 2 });
    expect(d.ctx.signals).toEqual({}); // consumed
  });

  it('a second early signal of the same name is not buffered over the first', () => {
    const d = new Drive(signals).send({ type: 'SignalReceived', name: 'go2', payload: 1, stepId: 's2' });
    expect(d.snap.can({ type: 'SignalReceived', name: 'go2', payload: 2, stepId: 's2' })).toBe(false);
  });

  it('a signal nobody awaits does not apply', () => {
    const d = new Drive(signals);
    expect(d.snap.can({ type: 'SignalReceived', name: 'nobody', payload: 1 })).toBe(false);
  });

  for (const order of [['s1', 'go2'], ['go2', 's1']]) {
    it(`two signals in one parallel group, delivered ${order.join(' then ')}, each reach their own step`, () => {
      const d = new Drive(signals).run('a').start('s1').start('s2');
      expect(d.value).toEqual({ running: { 'group(s1,s2)': { s1: 'waiting', s2: 'waiting' } } });
      const [first, second] = order;
      d.send({ type: 'SignalReceived', name: first, payload: `payload-${first}` });
      const firstStep = first === 's1' ? 's1' : 's2';
      const otherStep = firstStep === 's1' ? 's2' : 's1';
      expect(d.phases[firstStep]).toBe('done');
      expect(d.phases[otherStep]).toBe('waiting');
      expect(d.ctx.signals).toEqual({}); // a waiting step's own signal is not also buffered
      d.send({ type: 'SignalReceived', name: second, payload: `payload-${second}` });
      expect(d.value).toEqual({ running: { z: 'pending' } });
      expect(d.ctx.outputs).toMatchObject({ s1: 'payload-s1', s2: 'payload-go2' });
    });
  }

  it("a sibling's signal while one step waits is buffered for the sibling, not taken by the waiting step", () => {
    const d = new Drive(signals).run('a').start('s1'); // s1 waits, s2 still pending
    d.send({ type: 'SignalReceived', name: 'go2', payload: 'for-s2' });
    expect(d.phases.s1).toBe('waiting');
    expect(d.ctx.signals).toEqual({ go2: 'for-s2' });
    d.start('s2');
    expect(d.phases.s2).toBe('done');
    expect(d.ctx.outputs.s2).toBe('for-s2');
    d.send({ type: 'SignalReceived', name: 's1', payload: 'for-s1' });
    expect(d.value).toEqual({ running: { z: 'pending' } });
    expect(d.ctx.outputs).toMatchObject({ s1: 'for-s1', s2: 'for-s2' });
  });

  it('a signal step times out like any step (StepFailed while waiting) and may retry', () => {
    const d = new Drive(def({ id: 'w', steps: [{ id: 's', type: 'signal', retry: { maxAttempts: 2 } }] })).start('s');
    d.fail('s', { code: 'TIMEOUT', message: 'no signal', retryable: true });
    expect(d.value).toEqual({ running: { s: 'backoff' } });
    d.start('s', 2);
    expect(d.value).toEqual({ running: { s: 'waiting' } });
  });
});

describe('retry policy', () => {
  const policy = { maxAttempts: 5, initialDelayMs: 100, backoffRate: 2, maxDelayMs: 350 };

  it('retryDelayMs: initial × rate^(attempt-1), capped at maxDelayMs', () => {
    expect([1, 2, 3, 4].map((a) => retryDelayMs(policy, a))).toEqual([100, 200, 350, 350]);
    expect(retryDelayMs({ ...policy, backoffRate: 1.5, maxDelayMs: 10_000 }, 3)).toBe(225);
    expect(retryDelayMs(undefined, 1)).toBe(0);
  });

  it('canRetry: only retryable errors, only while attempts remain', () => {
    expect(canRetry(policy, 1, retryable)).toBe(true);
    expect(canRetry(policy, 4, retryable)).toBe(true);
    expect(canRetry(policy, 5, retryable)).toBe(false);
    expect(canRetry(policy, 1, fatal)).toBe(false);
    expect(canRetry(undefined, 1, retryable)).toBe(false);
  });
});

describe('resumeSnapshot', () => {
  const definition = def({ id: 'w', steps: [t('a'), t('b'), t('c'), t('d'), t('e')], parallel: [['b', 'c']] });
  const failedAtD = () => new Drive(definition).run('a').run('b').run('c').start('d').fail('d', fatal).send({ type: 'ExecutionFailed', stepId: 'd', error: fatal });

  it('continues at the first stage not done, keeping completed outputs', () => {
    const d = failedAtD();
    expect(d.value).toBe('failed');
    const next = resumeSnapshot(d.snap, { definition });
    expect(next.value).toEqual({ running: { d: 'pending' } });
    expect(plainContext(next.context).outputs).toEqual({ a: 'a', b: 'b', c: 'c' });
    expect(plainContext(next.context).errors).toEqual({}); // the failed step's error is cleared with it
    expect(next.context.error).toBeUndefined();
    expect(statusOf(next)).toBe('RUNNING');
  });

  it('from an earlier step: that stage and everything after it is pending, earlier outputs are kept', () => {
    const next = resumeSnapshot(failedAtD().snap, { definition, fromStep: 'c' });
    // a named step re-runs its whole group
    expect(next.value).toEqual({ running: { 'group(b,c)': { b: 'pending', c: 'pending' } } });
    expect(plainContext(next.context).outputs).toEqual({ a: 'a' });
    expect(plainContext(next.context).attempts).toEqual({ a: 1 });
  });

  it('from a checkpoint mid-group: completed branches stay done', () => {
    const d = new Drive(definition).run('a').start('b').start('c').complete('c');
    const next = resumeSnapshot(d.snap, { definition });
    expect(next.value).toEqual({ running: { 'group(b,c)': { b: 'pending', c: 'done' } } });
    expect(plainContext(next.context).outputs).toEqual({ a: 'a', c: 'c' });
  });

  it('an interrupted step (running when the process died) is pending again', () => {
    const d = new Drive(definition).run('a').run('b').run('c').start('d');
    expect(resumeSnapshot(d.snap, { definition }).value).toEqual({ running: { d: 'pending' } });
  });

  it('with replacement steps: keeps what came before, runs the new steps', () => {
    const replaced = def({ id: 'w', steps: [t('a'), t('b'), t('c'), t('d2'), t('e')], parallel: [['b', 'c']] });
    const next = resumeSnapshot(failedAtD().snap, { definition: replaced });
    expect(next.value).toEqual({ running: { d2: 'pending' } });
    expect(next.context.definition).toBe(replaced);
    expect(plainContext(next.context).outputs).toEqual({ a: 'a', b: 'b', c: 'c' });
  });

  it('refuses replacement steps that change a stage before the resume point', () => {
    const changed = def({ id: 'w', steps: [t('a'), t('b'), t('x'), t('d'), t('e')], parallel: [['b', 'x']] });
    expect(() => resumeSnapshot(failedAtD().snap, { definition: changed, fromStep: 'd' })).toThrow(DefinitionError);
  });

  it('refuses a step that is not in the workflow', () => {
    expect(() => resumeSnapshot(failedAtD().snap, { definition, fromStep: 'nope' })).toThrow(StepNotFoundError);
  });

  it('refuses a later step whose earlier steps have not completed', () => {
    expect(() => resumeSnapshot(failedAtD().snap, { definition, fromStep: 'e' })).toThrow(InvalidExecutionStateError);
  });

  it('the resumed snapshot takes the next events like any other', () => {
    let next = resumeSnapshot(failedAtD().snap, { definition });
    next = applyEvent(next, { type: 'StepStarted', stepId: 'd', attempt: 1 }, new Map(), 0);
    next = applyEvent(next, { type: 'StepCompleted', stepId: 'd', attempt: 1, output: 'd' }, new Map(), 0);
    expect(next.value).toEqual({ running: { e: 'pending' } });
  });
});

describe('foldEvents', () => {
  const definition = def({ id: 'w', steps: [t('a'), t('b')] });
  const events: WorkflowEvent[] = [
    { type: 'ExecutionStarted', definition, input: { x: 1 } },
    { type: 'StepStarted', stepId: 'a', attempt: 1 },
    { type: 'StepCompleted', stepId: 'a', attempt: 1, output: 'A' },
    { type: 'StepStarted', stepId: 'b', attempt: 1 },
    { type: 'StepFailed', stepId: 'b', attempt: 1, error: fatal },
    { type: 'ExecutionFailed', stepId: 'b', error: fatal },
  ];
  const states: unknown[] = [
    { running: { a: 'pending' } },
    { running: { a: 'running' } },
    { running: { b: 'pending' } },
    { running: { b: 'running' } },
    { running: { b: 'failed' } },
    'failed',
  ];
  const recorded = (): RecordedEvent[] => events.map((event, i) => ({ seq: 10 + i, event, state: states[i] }));

  it('re-derives every state; no mismatch when the log agrees', () => {
    const fold = foldEvents('exec-1', recorded());
    expect(fold.mismatches).toEqual([]);
    expect(fold.snapshot.value).toBe('failed');
    expect(fold.snapshot.context.input).toEqual({ x: 1 });
    expect(plainContext(fold.snapshot.context).outputs).toEqual({ a: 'A' });
    expect(fold.lastSeq).toBe(15);
    expect([...fold.checkpoints.keys()]).toEqual([10, 12]); // ExecutionStarted, StepCompleted
  });

  it('reports a recorded state that differs from the recomputed one', () => {
    const records = recorded();
    records[2] = { ...records[2], state: { running: { a: 'done' } } };
    const fold = foldEvents('exec-1', records);
    expect(fold.mismatches).toEqual([{ seq: 12, type: 'StepCompleted', recorded: { running: { a: 'done' } }, recomputed: { running: { b: 'pending' } } }]);
  });

  it('upToSeq stops the fold at a point in the log', () => {
    const fold = foldEvents('exec-1', recorded(), { upToSeq: 12 });
    expect(fold.snapshot.value).toEqual({ running: { b: 'pending' } });
    expect(fold.lastSeq).toBe(12);
  });

  it('refolds an ExecutionResumed record from its checkpoint', () => {
    const records = recorded();
    records.push({ seq: 16, event: { type: 'ExecutionResumed', checkpointSeq: 12, reason: 'resume' }, state: { running: { b: 'pending' } } });
    records.push({ seq: 17, event: { type: 'StepStarted', stepId: 'b', attempt: 1 }, state: { running: { b: 'running' } } });
    const fold = foldEvents('exec-1', records);
    expect(fold.mismatches).toEqual([]);
    expect(fold.snapshot.value).toEqual({ running: { b: 'running' } });
    expect(plainContext(fold.snapshot.context).outputs).toEqual({ a: 'A' });
  });

  it('refuses a log that does not begin with ExecutionStarted', () => {
    expect(() => foldEvents('exec-1', recorded().slice(1))).toThrow(/does not begin with ExecutionStarted/);
    expect(() => foldEvents('exec-1', [])).toThrow(/does not begin with ExecutionStarted/);
  });

  it('refuses an ExecutionResumed that points at no checkpoint', () => {
    const records = recorded();
    records.push({ seq: 16, event: { type: 'ExecutionResumed', checkpointSeq: 11, reason: 'resume' } });
    expect(() => foldEvents('exec-1', records)).toThrow(/not a checkpoint/);
  });
});
