/**
 * The map and workflow nodes of the machine, pure: which item starts the
 * machine accepts (in order, within maxConcurrency, none past the failures
 * tolerated), which results (only of running items, once), the output it
 * assembles, and the progress a resume continues from; and inline batches
 * of a pure block (the next items, started and settled in one record).
 */
import { describe, expect, it } from 'vitest';
import { transition } from 'xstate';
import { compileWorkflow, initialSnapshot, stepPhases, type ErrorInfo, type WorkflowEvent, type WorkflowSnapshot } from '../../machines/index.js';
import { progressOf, resumedProgress, type MapProgress } from '../../machines/containers/map.js';
import { validateDefinition } from '../../src/definition/validate.js';

const d = validateDefinition({ id: 'w', steps: [{ id: 'm', type: 'map', items: '{{input.xs}}', maxConcurrency: 2, toleratedFailures: 1, steps: [{ id: 'x', type: 'transform', value: '{{item}}' }] }] });
const machine = compileWorkflow(d);
const err: ErrorInfo = { code: 'CHILD_FAILED', message: 'no', retryable: false };

function apply(events: WorkflowEvent[]): WorkflowSnapshot {
  let s = initialSnapshot('e', d);
  for (const e of [{ type: 'ExecutionStarted', definition: d, input: {} } as WorkflowEvent, ...events]) {
    const [next] = transition(machine, s, e);
    if (next === s || JSON.stringify(next.value) === JSON.stringify(s.value) && JSON.stringify(next.context) === JSON.stringify(s.context)) throw new Error(`refused: ${JSON.stringify(e)}`);
    s = next;
  }
  return s;
}
const refused = (events: WorkflowEvent[]) => expect(() => apply(events)).toThrow(/refused/);

const begin: WorkflowEvent = { type: 'StepStarted', stepId: 'm', attempt: 1, items: [10, 20, 30, 40], count: 4 };
const launch = (...indexes: number[]): WorkflowEvent => ({ type: 'StepStarted', stepId: 'm', attempt: 1, launch: indexes.map((index) => ({ index, child: `c${index}` })) });
const done = (...indexes: number[]): WorkflowEvent => ({ type: 'StepCompleted', stepId: 'm', attempt: 1, output: null, results: indexes.map((index) => ({ index, child: `c${index}`, output: index * 10 })) });
const failed = (...indexes: number[]): WorkflowEvent => ({ type: 'StepFailed', stepId: 'm', attempt: 1, error: err, failures: indexes.map((index) => ({ index, child: `c${index}`, error: err })) });

describe('map node', () => {
  it('starts items in order and never more than maxConcurrency at once', () => {
    expect(stepPhases(apply([begin])).m).toBe('launching');
    expect(stepPhases(apply([begin, launch(0, 1)])).m).toBe('waiting');
    refused([begin, launch(0, 1, 2)]); // over maxConcurrency
    refused([begin, launch(1)]); // out of order
    refused([begin, launch(0, 1), launch(2)]); // no free slot
    expect(progressOf(apply([begin, launch(0, 1), done(1), launch(2)]).context, 'm')!.running).toEqual({ 0: 'c0', 2: 'c2' });
  });

  it('takes a result only from a running item, once', () => {
    refused([begin, launch(0), done(1)]);
    refused([begin, launch(0, 1), done(0), done(0)]);
    refused([begin, launch(0), { type: 'StepCompleted', stepId: 'm', attempt: 1, output: null, results: [{ index: 0, child: 'other', output: 1 }] }]);
  });

  it('assembles the outputs in item order, {error} for a tolerated failure, then closes', () => {
    const s = apply([begin, launch(0, 1), done(1), failed(0), launch(2, 3), done(3, 2)]);
    expect(stepPhases(s).m).toBe('closing');
    expect(progressOf(s.context, 'm')!.outputs).toEqual([{ error: err }, 10, 20, 30]);
  });

  it('past the failures tolerated: starts nothing more, lets the running finish, then fails', () => {
    const s = apply([begin, launch(0, 1), failed(0), launch(2), failed(1)]);
    expect(stepPhases(s).m).toBe('waiting'); // item 2 still runs
    refused([begin, launch(0, 1), failed(0), launch(2), failed(1), launch(3)]);
    const end = apply([begin, launch(0, 1), failed(0), launch(2), failed(1), done(2)]);
    expect(end.value).toEqual({ running: { m: 'failed' } });
  });

  it('resume: failed items and those cut off run again first, the completed keep their outputs', () => {
    const p = progressOf(apply([begin, launch(0, 1), failed(0), done(1), launch(2, 3)]).context, 'm') as MapProgress;
    expect(resumedProgress(p)).toMatchObject({ retry: [0, 2, 3], running: {}, failed: [], settled: 1, next: 4, outputs: [null, 10, null, null] });
  });

  const inlineDone = (...indexes: number[]): WorkflowEvent => ({ type: 'StepCompleted', stepId: 'm', attempt: 1, output: null, results: indexes.map((index) => ({ index, output: index * 10, steps: { x: index * 10 } })) });
  const inlineFailed = (...indexes: number[]): WorkflowEvent => ({ type: 'StepFailed', stepId: 'm', attempt: 1, error: err, failures: indexes.map((index) => ({ index, error: err, steps: {} })) });

  it('inline: takes the next items in order, at most maxConcurrency to a record, and assembles their outputs', () => {
    const s = apply([begin, inlineDone(0, 1), inlineDone(2, 3)]);
    expect(stepPhases(s).m).toBe('closing');
    expect(progressOf(s.context, 'm')!.outputs).toEqual([0, 10, 20, 30]);
    refused([begin, inlineDone(0, 1, 2)]); // over maxConcurrency
    refused([begin, inlineDone(1)]); // out of order
    refused([begin, inlineDone(0), inlineDone(0)]); // already settled
    refused([begin, launch(0, 1), inlineDone(2)]); // no free slot while children run
  });

  it('inline: failures count against toleratedFailures; past it nothing more is taken', () => {
    expect(progressOf(apply([begin, inlineDone(0), inlineFailed(1), inlineDone(2, 3)]).context, 'm')!.outputs).toEqual([0, { error: err }, 20, 30]);
    const s = apply([begin, inlineFailed(0), inlineFailed(1)]);
    expect(s.value).toEqual({ running: { m: 'failed' } });
    refused([begin, inlineFailed(0), inlineFailed(1), inlineDone(2)]);
    expect(resumedProgress(progressOf(s.context, 'm') as MapProgress)).toMatchObject({ retry: [0, 1], next: 2, settled: 0 });
  });

  it('inline records are refused for a block that is not pure (its items are child executions)', () => {
    const impure = validateDefinition({ id: 'w2', steps: [{ id: 'm', type: 'map', items: '{{input.xs}}', steps: [{ id: 'x', type: 'transform', value: 1, retry: { maxAttempts: 2 } }] }] });
    let s = initialSnapshot('e', impure);
    for (const e of [{ type: 'ExecutionStarted', definition: impure, input: {} } as WorkflowEvent, begin]) [s] = transition(compileWorkflow(impure), s, e);
    const [after] = transition(compileWorkflow(impure), s, inlineDone(0));
    expect(after.context).toEqual(s.context);
  });
});
