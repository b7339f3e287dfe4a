/**
 * Resuming executions on a real nats-server: from the failed step, from an
 * earlier step, with replacement steps, from a checkpoint in the middle of a
 * parallel group, and every refusal. Step runs are counted twice over: by the
 * executors (countingExecutors) and by a real HTTP server that the steps call,
 * so "completed steps are not re-run" is checked against what actually ran.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { countingExecutors, def, indexOf, stepEvents, types, useEngine } from '../support/engine.js';
import { replayExecution } from '../../src/log/replay.js';
import { listCheckpoints, loadExecution, summarize } from '../../src/log/views.js';
import { SmartSpecError } from '../../src/errors.js';
import type { Definition } from '../../machines/definition.js';
import type { StoredRecord } from '../../src/log/records.js';
import { plainContext } from '../support/context.js';

const nats = useNatsServer();
const fx = useEngine(nats);

/** A real HTTP service: /hit/<name> counts and answers the count; /flaky/<name> answers 503 while broken. */
const http = { url: '', server: undefined as Server | undefined, hits: new Map<string, number>(), broken: new Set<string>() };
beforeAll(async () => {
  http.server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const [, kind, name] = url.pathname.split('/');
    const n = (http.hits.get(name) ?? 0) + 1;
    http.hits.set(name, n);
    const delay = Number(url.searchParams.get('delayMs') ?? 0);
    setTimeout(() => {
      if (kind === 'flaky' && http.broken.has(name)) {
        res.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `${name} is down` }));
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ name, n }));
      }
    }, delay);
  });
  await new Promise<void>((r) => http.server!.listen(0, '127.0.0.1', r));
  http.url = `http://127.0.0.1:${(http.server!.address() as AddressInfo).port}`;
});
afterAll(async () => {
  http.server?.closeAllConnections();
  await new Promise((r) => http.server?.close(r));
});
beforeEach(() => {
  http.hits.clear();
  http.broken.clear();
});

let seq = 0;
/** Unique names per test, so the HTTP counts of one test are its own. */
const uniq = (p: string) => `${p}-${++seq}`;
const hit = (id: string, name: string, extra: Record<string, unknown> = {}) => ({ id, type: 'http', request: { url: `${http.url}/hit/${name}` }, ...extra });
const flaky = (id: string, name: string, delayMs = 0) => ({ id, type: 'http', request: { url: `${http.url}/flaky/${name}${delayMs ? `?delayMs=${delayMs}` : ''}` } });

/** build → {lint, typecheck} → tests → publish; `tests` calls a flaky endpoint. */
function releaseDefinition(tag: string): Definition {
  return def({
    id: 'release',
    steps: [
      hit('build', `${tag}-build`),
      hit('lint', `${tag}-lint`),
      hit('typecheck', `${tag}-typecheck`),
      flaky('tests', `${tag}-tests`),
      { id: 'publish', type: 'transform', value: { artifact: '{{steps.build.output.body}}', tests: '{{steps.tests.output.body}}' } },
    ],
    parallel: [['lint', 'typecheck']],
  });
}

const startedCount = (records: StoredRecord[], stepId: string) => stepEvents(records, 'StepStarted').filter((s) => s === stepId).length;

async function expectVerifies(executionId: string) {
  const records = await fx.log.read(executionId);
  const report = replayExecution(executionId, records);
  expect(report.chainBreaks).toEqual([]);
  expect(report.events.filter((e) => !e.ok)).toEqual([]);
  expect(report.ok).toBe(true);
  return records;
}

/** Run the release workflow with `tests` broken: it ends FAILED at tests. */
async function failedRelease() {
  const tag = uniq('rel');
  http.broken.add(`${tag}-tests`);
  const counting = countingExecutors();
  const engine = await fx.engine(counting.executors);
  const runner = await engine.start({ definition: releaseDefinition(tag), input: { v: 1 } });
  const outcome = await runner.done;
  expect(outcome.status).toBe('FAILED');
  expect(outcome.snapshot.context.error).toMatchObject({ code: 'HTTP_503' });
  return { tag, engine, runs: counting.runs, id: runner.executionId };
}

/** The error a call rejects with (fails the test when it resolves). */
async function rejection(p: Promise<unknown>): Promise<SmartSpecError> {
  const r = await p.then(() => undefined, (e: unknown) => e);
  expect(r, 'expected the call to be refused').toBeInstanceOf(SmartSpecError);
  return r as SmartSpecError;
}

describe('resume', () => {
  it('a failed execution from the failed step: completed steps are not re-run', async () => {
    const { tag, engine, runs, id } = await failedRelease();
    expect(Object.fromEntries(runs)).toEqual({ build: 1, lint: 1, typecheck: 1, tests: 1 });

    http.broken.delete(`${tag}-tests`); // the outside world is fixed
    const runner = await engine.resume(id, { fromStep: 'tests' });
    const outcome = await runner.done;
    expect(outcome.status).toBe('COMPLETED');

    expect(Object.fromEntries(runs)).toEqual({ build: 1, lint: 1, typecheck: 1, tests: 2, publish: 1 });
    expect(http.hits.get(`${tag}-build`)).toBe(1);
    expect(http.hits.get(`${tag}-lint`)).toBe(1);
    expect(http.hits.get(`${tag}-typecheck`)).toBe(1);
    expect(http.hits.get(`${tag}-tests`)).toBe(2);
    // publish saw build's output from the first run and tests' from the resumed one
    expect(plainContext(outcome.snapshot.context).outputs.publish).toEqual({ artifact: { name: `${tag}-build`, n: 1 }, tests: { name: `${tag}-tests`, n: 2 } });

    const records = await expectVerifies(id);
    const resumed = records[indexOf(records, 'ExecutionResumed')].record;
    expect(resumed).toMatchObject({ type: 'ExecutionResumed', fromStep: 'tests', reason: 'resume', state: { running: { tests: 'pending' } } });
    expect(indexOf(records, 'ExecutionResumed')).toBeGreaterThan(indexOf(records, 'ExecutionFailed'));
    expect(startedCount(records, 'build')).toBe(1);
    expect(startedCount(records, 'tests')).toBe(2);
    expect(records.at(-1)!.record.type).toBe('ExecutionCompleted');
    expect(summarize(await loadExecution(fx.log, id)).status).toBe('COMPLETED');
  });

  it('a failed execution without naming a step continues from its last checkpoint', async () => {
    const { tag, engine, runs, id } = await failedRelease();
    http.broken.delete(`${tag}-tests`);
    const outcome = await (await engine.resume(id)).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(Object.fromEntries(runs)).toEqual({ build: 1, lint: 1, typecheck: 1, tests: 2, publish: 1 });
    const records = await expectVerifies(id);
    expect(records[indexOf(records, 'ExecutionResumed')].record).toMatchObject({ reason: 'resume', state: { running: { tests: 'pending' } } });
  });

  it('from an earlier step: earlier outputs are kept, that step (its whole group) and later ones re-run', async () => {
    const { tag, engine, runs, id } = await failedRelease();
    http.broken.delete(`${tag}-tests`);
    const outcome = await (await engine.resume(id, { fromStep: 'lint' })).done;
    expect(outcome.status).toBe('COMPLETED');

    expect(Object.fromEntries(runs)).toEqual({ build: 1, lint: 2, typecheck: 2, tests: 2, publish: 1 });
    const outputs = plainContext(outcome.snapshot.context).outputs as Record<string, { body: { n: number } }>;
    expect(outputs.build.body.n).toBe(1); // kept from the first run
    expect(outputs.lint.body.n).toBe(2); // re-run
    expect(outputs.typecheck.body.n).toBe(2);

    const records = await expectVerifies(id);
    const resumedAt = indexOf(records, 'ExecutionResumed');
    expect(records[resumedAt].record).toMatchObject({ fromStep: 'lint', state: { running: { 'group(lint,typecheck)': { lint: 'pending', typecheck: 'pending' } } } });
    // the resume point is the checkpoint where the group was about to begin: build's completion
    const resumed = records[resumedAt].record as { checkpointSeq: number };
    expect(resumed.checkpointSeq).toBe(records[indexOf(records, 'StepCompleted', 'build')].seq);
    expect(startedCount(records.slice(resumedAt), 'build')).toBe(0);
    expect(startedCount(records.slice(resumedAt), 'lint')).toBe(1);
  });

  it('with replacement steps: the failing step is replaced and the execution completes', async () => {
    const { engine, runs, id } = await failedRelease();
    // `tests` stays broken: the replacement does not call it
    const corrected = {
      id: 'release',
      steps: [
        ...releaseDefinition('unused').steps.slice(0, 3).map((s) => ({ ...s })),
        { id: 'tests', type: 'transform', value: { passed: 42 } },
        { id: 'publish', type: 'transform', value: { tests: '{{steps.tests.output}}', build: '{{steps.build.output.body.n}}' } },
      ],
      parallel: [['lint', 'typecheck']],
    };
    const outcome = await (await engine.resume(id, { fromStep: 'tests', steps: corrected })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(plainContext(outcome.snapshot.context).outputs.publish).toEqual({ tests: { passed: 42 }, build: 1 });
    expect(Object.fromEntries(runs)).toEqual({ build: 1, lint: 1, typecheck: 1, tests: 2, publish: 1 });

    const records = await expectVerifies(id);
    const resumed = records[indexOf(records, 'ExecutionResumed')].record as { definition?: Definition };
    expect(resumed.definition?.steps.find((s) => s.id === 'tests')?.type).toBe('transform');
    // status is folded with the replacement definition
    const summary = summarize(await loadExecution(fx.log, id));
    expect(summary.status).toBe('COMPLETED');
    expect(summary.steps.tests).toMatchObject({ phase: 'done', output: { passed: 42 } });
  });

  it('with replacement steps that add a step after the failed one', async () => {
    const { engine, id } = await failedRelease();
    const steps = {
      steps: [
        ...releaseDefinition('unused').steps.slice(0, 3),
        { id: 'tests', type: 'transform', value: 'ok' },
        { id: 'notify', type: 'transform', value: 'sent' },
        { id: 'publish', type: 'transform', value: '{{steps.notify.output}}' },
      ],
      parallel: [['lint', 'typecheck']],
    };
    const outcome = await (await engine.resume(id, { steps })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(plainContext(outcome.snapshot.context).outputs).toMatchObject({ notify: 'sent', publish: 'sent' });
    await expectVerifies(id);
  });

  it('a failure during the resumed run marks the execution FAILED with the error recorded', async () => {
    const { tag, engine, runs, id } = await failedRelease();
    const before = (await fx.log.read(id)).length;
    // still broken: the resumed run fails at tests again
    const outcome = await (await engine.resume(id, { fromStep: 'tests' })).done;
    expect(outcome.status).toBe('FAILED');
    expect(runs.get('tests')).toBe(2);
    expect(runs.get('publish')).toBeUndefined();

    const records = await expectVerifies(id);
    const after = records.slice(before);
    expect(types(after)).toEqual(['ExecutionResumed', 'StepStarted', 'StepFailed', 'ExecutionFailed']);
    expect(after.at(-1)!.record).toMatchObject({ type: 'ExecutionFailed', stepId: 'tests', state: 'failed', error: { code: 'HTTP_503', message: expect.stringContaining(`${tag}-tests is down`) } });
    const summary = summarize(await loadExecution(fx.log, id));
    expect(summary.status).toBe('FAILED');
    expect(summary.error).toMatchObject({ code: 'HTTP_503' });
    expect(summary.steps.tests).toMatchObject({ phase: 'failed', error: { code: 'HTTP_503' } });
    expect(summary.steps.build.phase).toBe('done');

    // and it can be resumed again: two resumes in one history still replay
    http.broken.delete(`${tag}-tests`);
    const again = await (await engine.resume(id, { fromStep: 'tests' })).done;
    expect(again.status).toBe('COMPLETED');
    expect(Object.fromEntries(runs)).toEqual({ build: 1, lint: 1, typecheck: 1, tests: 3, publish: 1 });
    const all = await expectVerifies(id);
    expect(types(all).filter((x) => x === 'ExecutionResumed')).toHaveLength(2);
  });

  it('from a checkpoint listed by listCheckpoints, in the middle of a parallel group: completed branches are not re-run', async () => {
    const tag = uniq('cp');
    http.broken.add(`${tag}-typecheck`);
    const { executors, runs } = countingExecutors();
    const engine = await fx.engine(executors);
    const definition = def({
      id: 'mid-group',
      steps: [hit('build', `${tag}-build`), hit('lint', `${tag}-lint`), flaky('typecheck', `${tag}-typecheck`, 150), hit('tests', `${tag}-tests`)],
      parallel: [['lint', 'typecheck']],
    });
    const runner = await engine.start({ definition });
    expect((await runner.done).status).toBe('FAILED');

    const records = await fx.log.read(runner.executionId);
    const checkpoints = listCheckpoints(records);
    expect(checkpoints.map((c) => [c.type, c.stepId])).toEqual([['ExecutionStarted', undefined], ['StepCompleted', 'build'], ['StepCompleted', 'lint']]);
    const cp = checkpoints.find((c) => c.stepId === 'lint')!;
    expect(cp.id).toBe(`cp-${cp.seq}`);
    expect(cp.state).toEqual({ running: { 'group(lint,typecheck)': { lint: 'done', typecheck: 'running' } } });

    http.broken.delete(`${tag}-typecheck`);
    const outcome = await (await engine.resume(runner.executionId, { checkpointId: cp.id })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(Object.fromEntries(runs)).toEqual({ build: 1, lint: 1, typecheck: 2, tests: 1 });
    expect(http.hits.get(`${tag}-lint`)).toBe(1);

    const all = await expectVerifies(runner.executionId);
    const resumedAt = indexOf(all, 'ExecutionResumed');
    expect(all[resumedAt].record).toMatchObject({ checkpointSeq: cp.seq, reason: 'resume', state: { running: { 'group(lint,typecheck)': { lint: 'done', typecheck: 'pending' } } } });
    expect(startedCount(all.slice(resumedAt), 'lint')).toBe(0);
    expect(startedCount(all.slice(resumedAt), 'typecheck')).toBe(1);
  });

  it('from the ExecutionStarted checkpoint re-runs everything; a bare sequence number works too', async () => {
    const { tag, engine, runs, id } = await failedRelease();
    http.broken.delete(`${tag}-tests`);
    const start = listCheckpoints(await fx.log.read(id))[0];
    expect(start.type).toBe('ExecutionStarted');
    const outcome = await (await engine.resume(id, { checkpointId: String(start.seq) })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(Object.fromEntries(runs)).toEqual({ build: 2, lint: 2, typecheck: 2, tests: 2, publish: 1 });
    await expectVerifies(id);
  });

  it('an interrupted execution (no live owner) is recovered from its last transition', async () => {
    const tag = uniq('rec');
    const a = countingExecutors();
    const first = await fx.engine(a.executors);
    const definition = def({ id: 'interrupted', steps: [hit('a', `${tag}-a`), { id: 'wait', type: 'sleep', durationMs: 300 }, hit('b', `${tag}-b`)] });
    const runner = await first.start({ definition });
    await waitFor(async () => indexOf(await fx.log.read(runner.executionId), 'StepStarted', 'wait') >= 0);
    runner.stop(); // the process "dies": nothing more is written
    await runner.done;
    expect(await first.liveOwner(runner.executionId)).toBeUndefined();
    expect(summarize(await loadExecution(fx.log, runner.executionId)).status).toBe('WAITING'); // sleeping

    const b = countingExecutors();
    const second = await fx.engine(b.executors);
    const outcome = await (await second.resume(runner.executionId)).done;
    expect(outcome.status).toBe('COMPLETED');
    expect(Object.fromEntries(b.runs)).toEqual({ b: 1 }); // a is not run again
    expect(http.hits.get(`${tag}-a`)).toBe(1);
    const records = await expectVerifies(runner.executionId);
    expect(records[indexOf(records, 'ExecutionResumed')].record).toMatchObject({ reason: 'recovery' });
    // The sleep was not started again: it ended at the wake time recorded before the crash.
    expect(stepEvents(records, 'StepStarted').filter((s) => s === 'wait')).toHaveLength(1);
    const wakeAt = (records[indexOf(records, 'StepStarted', 'wait')].record as { wakeAt?: string }).wakeAt!;
    expect(Date.parse(records[indexOf(records, 'StepCompleted', 'wait')].record.at)).toBeGreaterThanOrEqual(Date.parse(wakeAt));
  });

  it('a cancelled execution can be resumed', async () => {
    const engine = await fx.engine();
    const definition = def({ id: 'cancel-me', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'wait', type: 'sleep', durationMs: 5000 }, { id: 'b', type: 'transform', value: 2 }] });
    const runner = await engine.start({ definition });
    await waitFor(async () => indexOf(await fx.log.read(runner.executionId), 'StepStarted', 'wait') >= 0);
    await engine.cancel(runner.executionId, 'test');
    expect((await runner.done).status).toBe('CANCELLED');
    const replacement = { steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'wait', type: 'sleep', durationMs: 10 }, { id: 'b', type: 'transform', value: 2 }] };
    const outcome = await (await engine.resume(runner.executionId, { steps: replacement })).done;
    expect(outcome.status).toBe('COMPLETED');
    await expectVerifies(runner.executionId);
  });
});

describe('resume refusals', () => {
  /** Every refusal leaves the log as it was. */
  async function unchanged(id: string, fn: () => Promise<void>) {
    const before = await fx.log.read(id);
    await fn();
    expect(await fx.log.read(id)).toEqual(before);
  }

  it('checkpoint not found', async () => {
    const { engine, id } = await failedRelease();
    const records = await fx.log.read(id);
    const notACheckpoint = records[indexOf(records, 'StepStarted', 'build')].seq; // a StepStarted is not a step boundary
    await unchanged(id, async () => {
      for (const checkpointId of ['cp-99999', `cp-${notACheckpoint}`, 'nonsense']) {
        const e = await rejection(engine.resume(id, { checkpointId }));
        expect(e.name).toBe('CheckpointNotFoundError');
        expect(e.code).toBe('CHECKPOINT_NOT_FOUND');
        expect(e.message).toContain(`checkpoint '${checkpointId}' not found in execution '${id}'`);
      }
    });
  });

  it('a step that is not in the workflow', async () => {
    const { engine, id } = await failedRelease();
    await unchanged(id, async () => {
      const e = await rejection(engine.resume(id, { fromStep: 'deploy' }));
      expect(e.name).toBe('StepNotFoundError');
      expect(e.code).toBe('STEP_NOT_FOUND');
      expect(e.message).toMatch(/step 'deploy' is not in workflow 'release'/);
    });
  });

  it('a later step whose earlier steps never completed', async () => {
    const { engine, id } = await failedRelease();
    await unchanged(id, async () => {
      const e = await rejection(engine.resume(id, { fromStep: 'publish' }));
      expect(e.code).toBe('INVALID_EXECUTION_STATE');
      expect(e.message).toMatch(/'tests'.*has not completed/);
    });
  });

  it('no steps in the replacement', async () => {
    const { engine, id } = await failedRelease();
    await unchanged(id, async () => {
      for (const steps of [{ steps: [] }, { id: 'release' }, {}, null]) {
        const e = await rejection(engine.resume(id, { fromStep: 'tests', steps }));
        expect(e.name).toBe('NoStepsError');
        expect(e.code).toBe('NO_STEPS');
      }
    });
  });

  it('an invalid replacement is rejected with the offending path', async () => {
    const { engine, id } = await failedRelease();
    await unchanged(id, async () => {
      const e = await rejection(engine.resume(id, { steps: { steps: [{ id: 'x', type: 'shell' }] } }));
      expect(e.code).toBe('INVALID_DEFINITION');
      expect(e.message).toContain('steps[0].type');
    });
  });

  it('a replacement that changes steps before the resume point', async () => {
    const { engine, id } = await failedRelease();
    await unchanged(id, async () => {
      const steps = { steps: [{ id: 'build2', type: 'transform', value: 1 }, { id: 'tests', type: 'transform', value: 1 }] };
      const e = await rejection(engine.resume(id, { fromStep: 'tests', steps }));
      expect(e.code).toBe('INVALID_DEFINITION');
      expect(e.message).toMatch(/before the resume point/);
    });
  });

  it('both a checkpoint and a step', async () => {
    const { engine, id } = await failedRelease();
    const e = await rejection(engine.resume(id, { checkpointId: 'cp-1', fromStep: 'tests' }));
    expect(e.code).toBe('INVALID_INPUT');
  });

  it('an unknown execution', async () => {
    const engine = await fx.engine();
    const e = await rejection(engine.resume('no-such-execution'));
    expect(e.code).toBe('EXECUTION_NOT_FOUND');
  });

  it('a COMPLETED execution: nothing to resume, and the message says why', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({ definition: def({ id: 'done', steps: [{ id: 'a', type: 'transform', value: 1 }] }) });
    expect((await runner.done).status).toBe('COMPLETED');
    await unchanged(runner.executionId, async () => {
      // `ofChild` (a parent resuming its child) does not open a top-level execution: it has no parent.
      for (const req of [{}, { fromStep: 'a' }, { checkpointId: 'cp-1' }, { fromStep: 'a', ofChild: true }]) {
        const e = await rejection(engine.resume(runner.executionId, req));
        expect(e.name).toBe('InvalidExecutionStateError');
        expect(e.code).toBe('INVALID_EXECUTION_STATE');
        expect(e.message).toMatch(/is COMPLETED: there is nothing to resume/);
      }
    });
  });

  it('a RUNNING execution owned by a live engine, from another engine or the same one; the run continues', async () => {
    const owner = await fx.engine();
    const other = await fx.engine();
    const definition = def({ id: 'busy', steps: [{ id: 'wait', type: 'sleep', durationMs: 400 }, { id: 'b', type: 'transform', value: 'done' }] });
    const runner = await owner.start({ definition });
    await waitFor(async () => indexOf(await fx.log.read(runner.executionId), 'StepStarted', 'wait') >= 0);

    await unchanged(runner.executionId, async () => {
      for (const engine of [other, owner]) {
        for (const req of [{}, { fromStep: 'wait' }]) {
          const e = await rejection(engine.resume(runner.executionId, req));
          expect(e.name).toBe('ExecutionOwnedError');
          expect(e.code).toBe('EXECUTION_OWNED');
          expect(e.message).toContain(`is owned by live process ${owner.owner}`);
        }
      }
    });
    const outcome = await runner.done;
    expect(outcome.status).toBe('COMPLETED');
    const records = await expectVerifies(runner.executionId);
    expect(indexOf(records, 'ExecutionResumed')).toBe(-1);
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
