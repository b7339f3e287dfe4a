/**
 * `{% … %}` expressions on a real nats-server: the worker evaluates them, the
 * log records what they gave (an output, a skip), a failing or runaway one
 * fails its step with EXPRESSION_FAILED (not retried) naming the path, and
 * replay never evaluates them again.
 */
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { countingExecutors, def, useEngine } from '../support/engine.js';
import { replayExecution } from '../../src/log/replay.js';
import { plainContext } from '../support/context.js';
import { foldEvents } from '../../machines/replay.js';
import { stepMapGet, type WorkflowEvent } from '../../machines/index.js';

const nats = useNatsServer();
const fx = useEngine(nats);

const records = (id: string) => fx.log.read(id);

describe('expressions', () => {
  it('compute values and decide `when`; the log holds what they gave, and replay verifies', async () => {
    const engine = await fx.engine();
    const definition = def({
      id: 'expr',
      steps: [
        { id: 'a', type: 'transform', value: { n: '{{input.n}}', words: ['x', 'yy', 'zzz'] } },
        { id: 'b', type: 'transform', value: { double: '{% steps.a.output.n * 2 %}', longest: '{% $max(steps.a.output.words.$length($)) %}', id: '{% execution.id %}' } },
        { id: 'big', type: 'transform', when: '{% steps.b.output.double > 5 %}', value: 'big' },
        { id: 'small', type: 'transform', when: '{% steps.b.output.double <= 5 %}', value: 'small' },
      ],
    });
    const runner = await engine.start({ definition, input: { n: 4 } });
    const outcome = await runner.done;
    expect(outcome.status).toBe('COMPLETED');
    const outputs = plainContext(outcome.snapshot.context).outputs;
    expect(outputs.b).toEqual({ double: 8, longest: 3, id: runner.executionId });
    expect(outputs.big).toBe('big');
    const log = await records(runner.executionId);
    const small = log.filter((r) => (r.record as { stepId?: string }).stepId === 'small').map((r) => r.record);
    expect(small).toEqual([expect.objectContaining({ type: 'StepCompleted', skipped: true, output: null })]);
    expect(replayExecution(runner.executionId, log).ok).toBe(true);
  });

  it('a failing expression fails its step with EXPRESSION_FAILED, naming the path, and is not retried', async () => {
    const { executors, runs } = countingExecutors();
    const engine = await fx.engine(executors);
    const definition = def({
      id: 'expr-fail',
      steps: [
        { id: 'a', type: 'transform', value: 1 },
        { id: 'b', type: 'transform', retry: { maxAttempts: 3, initialDelayMs: 0 }, value: { x: '{% $error("no good") %}' } },
      ],
    });
    const runner = await engine.start({ definition });
    const outcome = await runner.done;
    expect(outcome.status).toBe('FAILED');
    const error = outcome.snapshot.context.error!;
    expect(error).toMatchObject({ code: 'EXPRESSION_FAILED', retryable: false });
    expect(error.message).toMatch(/^steps\[1\]\.value\.x: expression failed.*no good/);
    expect(error.details).toMatchObject({ path: 'steps[1].value.x' });
    const log = await records(runner.executionId);
    expect(log.filter((r) => r.record.type === 'StepStarted' && (r.record as { stepId: string }).stepId === 'b')).toHaveLength(1);
    expect(runs.get('b') ?? 0).toBe(0); // the executor never ran: the step failed resolving its value
  });

  it('a failing `when` fails the step before it starts', async () => {
    const engine = await fx.engine();
    const definition = def({ id: 'expr-when', steps: [{ id: 'a', type: 'transform', value: 1, when: '{% $number("nope") %}' }] });
    const outcome = await (await engine.start({ definition })).done;
    expect(outcome.status).toBe('FAILED');
    expect(outcome.snapshot.context.error).toMatchObject({ code: 'EXPRESSION_FAILED', details: { path: 'steps[0].when' } });
  });

  it('an expression that would run forever is stopped by the bound', async () => {
    const engine = await fx.engine();
    const definition = def({ id: 'expr-forever', steps: [{ id: 'a', type: 'transform', value: '{% ($f := function($n) { $f($n + 1) + 1 }; $f(0)) %}' }] });
    const outcome = await (await engine.start({ definition })).done;
    expect(outcome.status).toBe('FAILED');
    expect(outcome.snapshot.context.error).toMatchObject({ code: 'EXPRESSION_FAILED', retryable: false });
    expect(outcome.snapshot.context.error!.message).toMatch(/ran past \d+ ms|nested deeper than \d+/);
  });

  it('replay uses the recorded result: an expression whose value changes ($now) still verifies', async () => {
    const engine = await fx.engine();
    const definition = def({ id: 'expr-now', steps: [{ id: 'a', type: 'transform', value: '{% $now() %}' }, { id: 'b', type: 'transform', when: '{% $millis() > 0 %}', value: '{{steps.a.output}}' }] });
    const runner = await engine.start({ definition });
    await runner.done;
    const log = await records(runner.executionId);
    const recorded = (log.find((r) => r.record.type === 'StepCompleted')!.record as { output: string }).output;
    await new Promise((r) => setTimeout(r, 5)); // $now() would give another time now
    expect(replayExecution(runner.executionId, log).ok).toBe(true);
    const fold = foldEvents(runner.executionId, log.map((r) => ({ seq: r.seq, event: r.record as unknown as WorkflowEvent, state: r.record.state })));
    expect(stepMapGet(fold.snapshot.context.outputs, 'b')).toBe(recorded);
    expect(new Date(recorded).toString()).not.toBe('Invalid Date');
  });
});
