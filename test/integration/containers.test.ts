/**
 * Container steps on a real nats-server (and a real HTTP server where the
 * timing matters): switch, parallel branches of several steps, loops and
 * graphs, alone and nested. Outputs, the order of records read back from the
 * log, and replay verifying.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { def, indexOf, useEngine } from '../support/engine.js';
import { replayExecution } from '../../src/log/replay.js';
import { plainContext } from '../support/context.js';
import type { StoredRecord } from '../../src/log/records.js';
import { loadExecution, summarize } from '../../src/log/views.js';

const nats = useNatsServer();
const fx = useEngine(nats);

type Doc = Record<string, unknown>;
const t = (id: string, value: unknown = 1, extra: Doc = {}) => ({ id, type: 'transform', value, ...extra });
const rec = (records: StoredRecord[], type: string, stepId: string) => records.filter((r) => r.record.type === type && (r.record as { stepId?: string }).stepId === stepId).map((r) => r.record as Record<string, any>);

async function run(d: Doc, input: unknown = {}) {
  const engine = await fx.engine();
  const runner = await engine.start({ definition: def(d), input });
  const outcome = await runner.done;
  const records = await fx.log.read(runner.executionId);
  const replay = replayExecution(runner.executionId, records);
  expect(replay.ok, JSON.stringify(replay)).toBe(true);
  return { outcome, records, outputs: plainContext(outcome.snapshot.context).outputs, runner };
}

/** A server whose handlers the tests set per path; it counts requests and sees aborted ones. */
let server: ReturnType<typeof createServer>;
let base = '';
const handlers = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>();
beforeAll(async () => {
  server = createServer((req, res) => {
    const h = handlers.get(req.url ?? '');
    if (h) h(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('switch', () => {
  const sw = {
    id: 'route',
    steps: [
      t('classify', { category: '{{input.category}}' }),
      {
        id: 'route', type: 'switch',
        cases: [
          { when: "{% steps.classify.output.category = 'billing' %}", steps: [t('refund', 'refund')] },
          { when: "{% steps.classify.output.category = 'bug' %}", steps: [t('ticket', 7), t('notify', { ticket: '{{steps.ticket.output}}' })] },
          { when: "{% steps.classify.output.category in ['bug', 'billing'] %}", steps: [t('never', 'never')] },
        ],
        default: [t('noop', 'default')],
      },
      t('after', { routed: '{{steps.route.output}}' }),
    ],
  };

  it('takes exactly the first case whose when is true, and records which', async () => {
    const { outcome, records, outputs } = await run(sw, { category: 'bug' });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.route).toEqual({ ticket: 7 });
    expect(outputs.after).toEqual({ routed: { ticket: 7 } });
    expect(rec(records, 'StepStarted', 'route')).toEqual([expect.objectContaining({ case: 1 })]);
    for (const id of ['refund', 'never', 'noop']) expect(rec(records, 'StepStarted', id)).toEqual([]);
    // the block runs in order, inside the switch
    expect(indexOf(records, 'StepStarted', 'route')).toBeLessThan(indexOf(records, 'StepStarted', 'ticket'));
    expect(indexOf(records, 'StepCompleted', 'ticket')).toBeLessThan(indexOf(records, 'StepStarted', 'notify'));
    expect(indexOf(records, 'StepCompleted', 'notify')).toBeLessThan(indexOf(records, 'StepCompleted', 'route'));
    expect(rec(records, 'StepStarted', 'notify')[0].state).toEqual({ running: { route: { 'case:1': { notify: 'running' } } } });
  });

  it('the execution summary lists the steps inside containers', async () => {
    const { runner } = await run(sw, { category: 'bug' });
    const summary = summarize(await loadExecution(fx.log, runner.executionId));
    expect(summary.steps.ticket).toMatchObject({ phase: 'done', output: 7 });
    expect(summary.steps.refund).toEqual({ phase: 'pending' });
    expect(summary.steps.route).toMatchObject({ phase: 'done', output: { ticket: 7 } });
  });

  it('default when no case holds', async () => {
    const { outputs, records } = await run(sw, { category: 'other' });
    expect(outputs.route).toBe('default');
    expect(rec(records, 'StepStarted', 'route')).toEqual([expect.objectContaining({ case: 'default' })]);
  });

  it('no case and no default: null', async () => {
    const { outcome, outputs, records } = await run({ id: 'nodefault', steps: [{ id: 's', type: 'switch', cases: [{ when: '{% false %}', steps: [t('x')] }] }, t('after', { got: '{{steps.s.output}}' })] });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.s).toBeNull();
    expect(outputs.after).toEqual({ got: null });
    expect(rec(records, 'StepStarted', 's')).toEqual([expect.objectContaining({ case: null })]);
  });
});

describe('parallel', () => {
  it('runs branches of several steps at once, each in order, and joins', async () => {
    const d = {
      id: 'par',
      steps: [
        t('a', 2),
        { id: 'reviews', type: 'parallel', branches: {
          security: [{ id: 'secDraft', type: 'sleep', durationMs: 50 }, t('secCheck', { draft: '{{steps.secDraft.output}}', a: '{{steps.a.output}}' })],
          perf: [t('bench', 3)],
        } },
        t('merge', '{% steps.reviews.output.perf + steps.a.output %}'),
      ],
    };
    const { outcome, records, outputs } = await run(d);
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.reviews).toEqual({ security: { draft: { sleptMs: 50 }, a: 2 }, perf: 3 });
    expect(outputs.merge).toBe(5);
    // both branches start before either ends; each branch's steps in order
    expect(indexOf(records, 'StepStarted', 'bench')).toBeLessThan(indexOf(records, 'StepCompleted', 'secDraft'));
    expect(indexOf(records, 'StepCompleted', 'secDraft')).toBeLessThan(indexOf(records, 'StepStarted', 'secCheck'));
    expect(indexOf(records, 'StepCompleted', 'reviews')).toBeGreaterThan(Math.max(indexOf(records, 'StepCompleted', 'secCheck'), indexOf(records, 'StepCompleted', 'bench')));
  });

  it('a failing branch fails the step and the execution; with onError continue the step outputs the error', async () => {
    const failing = (onError?: string) => ({
      id: `parfail-${onError ?? 'fail'}`,
      steps: [{ id: 'p', type: 'parallel', ...(onError ? { onError } : {}), branches: { ok: [t('fine')], bad: [{ id: 'boom', type: 'fail', message: 'no' }] } }, t('after', 'ran')],
    });
    const failed = await run(failing());
    expect(failed.outcome.status).toBe('FAILED');
    expect(failed.outcome.snapshot.context.error).toMatchObject({ code: 'STEP_FAILED' });
    expect(rec(failed.records, 'StepFailed', 'p')).toHaveLength(1);
    expect(rec(failed.records, 'StepStarted', 'after')).toEqual([]);
    const continued = await run(failing('continue'));
    expect(continued.outcome.status).toBe('COMPLETED');
    expect(continued.outputs.p).toEqual({ error: expect.objectContaining({ code: 'STEP_FAILED' }) });
    expect(continued.outputs.after).toBe('ran');
  });

  it('cancelling the execution aborts the requests of running branches', async () => {
    let aborted = 0;
    let requests = 0;
    let opened!: () => void;
    const open = new Promise<void>((r) => { opened = r; });
    handlers.set('/hang', (req, res) => { requests++; opened(); res.on('close', () => { if (!res.writableEnded) aborted++; }); });
    const engine = await fx.engine();
    const runner = await engine.start({ definition: def({ id: 'parcancel', steps: [{ id: 'p', type: 'parallel', branches: { slow: [{ id: 'h', type: 'http', request: { url: `${base}/hang` } }], quick: [t('q')] } }] }) });
    await open;
    await engine.cancel(runner.executionId);
    const outcome = await runner.done;
    expect(outcome.status).toBe('CANCELLED');
    // Every request the branch had open is aborted (the HTTP client may have opened a second
    // connection for the same attempt under load), and none is answered.
    for (let i = 0; i < 50 && aborted < requests; i++) await new Promise((r) => setTimeout(r, 20));
    expect(aborted).toBeGreaterThanOrEqual(1);
    expect(aborted).toBe(requests);
  });
});

describe('loop', () => {
  it('stops by until, with {{iteration}} inside, and records each iteration', async () => {
    const d = { id: 'agent', steps: [{ id: 'agent', type: 'loop', maxIterations: 5, until: '{% steps.think.output.done %}', steps: [t('think', { done: '{% iteration >= 3 %}', n: '{{iteration}}' })] }, t('after', '{{steps.agent.output}}')] };
    const { outcome, records, outputs } = await run(d);
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.agent).toEqual({ done: true, n: 3 });
    expect(rec(records, 'StepStarted', 'agent').map((r) => r.iteration)).toEqual([1, 2, 3]);
    expect(rec(records, 'StepCompleted', 'think').map((r) => r.iteration)).toEqual([1, 2, 3]);
    expect(rec(records, 'StepCompleted', 'agent')).toEqual([expect.objectContaining({ iterations: 3 })]);
    expect(outputs.after).toEqual({ done: true, n: 3 });
  });

  it('maxIterations: fails with MAX_ITERATIONS, or continues with the last output', async () => {
    const loop = (onMaxIterations: string) => ({ id: `max-${onMaxIterations}`, steps: [{ id: 'l', type: 'loop', maxIterations: 2, onMaxIterations, until: '{% false %}', steps: [t('x', '{{iteration}}')] }] });
    const failed = await run(loop('fail'));
    expect(failed.outcome.status).toBe('FAILED');
    expect(failed.outcome.snapshot.context.error).toMatchObject({ code: 'MAX_ITERATIONS', retryable: false });
    const continued = await run(loop('continue'));
    expect(continued.outcome.status).toBe('COMPLETED');
    expect(continued.outputs.l).toBe(2);
    expect(rec(continued.records, 'StepCompleted', 'l')).toEqual([expect.objectContaining({ iterations: 2 })]);
  });

  it('a switch inside a loop, and a parallel inside that', async () => {
    const d = {
      id: 'nested',
      steps: [{
        id: 'l', type: 'loop', maxIterations: 3, steps: [{
          id: 's', type: 'switch',
          cases: [{ when: '{% iteration = 2 %}', steps: [{ id: 'p', type: 'parallel', branches: { x: [t('x1', '{{iteration}}')], y: [t('y1', 'y')] } }] }],
          default: [t('d', 'odd')],
        }],
      }],
    };
    const { outcome, records } = await run(d);
    expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
    expect(rec(records, 'StepStarted', 's').map((r) => r.case)).toEqual(['default', 0, 'default']);
    expect(rec(records, 'StepCompleted', 'p').map((r) => r.output)).toEqual([{ x: 2, y: 'y' }]);
    expect(rec(records, 'StepCompleted', 'd').map((r) => r.iteration)).toEqual([1, 3]);
  });
});

describe('a loop inside a loop', () => {
  it('restarts the inner loop on each outer iteration, and both count their own iterations', async () => {
    const d = {
      id: 'nested-loops',
      steps: [{
        id: 'outer', type: 'loop', maxIterations: 3, steps: [{
          id: 'inner', type: 'loop', maxIterations: 4, until: '{% steps.cell.output.j >= 2 %}',
          steps: [t('cell', { j: '{{iteration}}' })],
        }, t('row', '{{iteration}}')],
      }],
    };
    const { outcome, records, outputs } = await run(d);
    expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
    expect(rec(records, 'StepStarted', 'outer').map((r) => r.iteration)).toEqual([1, 2, 3]);
    expect(rec(records, 'StepStarted', 'inner').map((r) => r.iteration)).toEqual([1, 2, 1, 2, 1, 2]);
    expect(rec(records, 'StepCompleted', 'inner').map((r) => r.iterations)).toEqual([2, 2, 2]);
    expect(rec(records, 'StepCompleted', 'row').map((r) => r.output)).toEqual([1, 2, 3]);
    expect(outputs.outer).toBe(3);
  });
});

describe('graph', () => {
  it('D←{A,B} starts as soon as A and B are done, without waiting for C (held by the server until D is called)', async () => {
    let dCalled!: () => void;
    const called = new Promise<void>((r) => { dCalled = r; });
    handlers.set('/c', (_req, res) => {
      const timer = setTimeout(() => res.writeHead(504).end('{"d":"not called"}'), 5000);
      void called.then(() => { clearTimeout(timer); res.writeHead(200, { 'content-type': 'application/json' }).end('{"c":true}'); });
    });
    handlers.set('/d', (_req, res) => { dCalled(); res.writeHead(200, { 'content-type': 'application/json' }).end('{"d":true}'); });
    const http = (id: string, path: string, needs?: string[]) => ({ id, type: 'http', request: { url: `${base}${path}` }, retry: { maxAttempts: 1 }, ...(needs ? { needs } : {}) });
    const d = {
      id: 'deps',
      steps: [{ id: 'g', type: 'graph', steps: [t('A'), t('B'), http('C', '/c'), http('D', '/d', ['A', 'B']), t('E', '{{steps.C.output.body}}', { needs: ['B', 'C'] })] }],
    };
    const { outcome, records, outputs } = await run(d);
    expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
    expect(indexOf(records, 'StepStarted', 'D')).toBeLessThan(indexOf(records, 'StepCompleted', 'C'));
    expect(indexOf(records, 'StepStarted', 'E')).toBeGreaterThan(indexOf(records, 'StepCompleted', 'C'));
    expect(outputs.g).toMatchObject({ A: 1, B: 1, E: { c: true } });
  });
});

describe('resume of a FAILED execution re-runs only what had not completed', () => {
  /** Counts hits per path; /flaky answers 500 until fixed. */
  function countingServer() {
    const hits = new Map<string, number>();
    let fixed = false;
    for (const path of ['/ok', '/flaky', '/first']) {
      handlers.set(path, (req, res) => {
        hits.set(path, (hits.get(path) ?? 0) + 1);
        const fail = path === '/flaky' && !fixed;
        res.writeHead(fail ? 500 : 200, { 'content-type': 'application/json' }).end(JSON.stringify({ path }));
      });
    }
    return { hits, fix: () => { fixed = true; } };
  }
  const http = (id: string, path: string) => ({ id, type: 'http', request: { url: `${base}${path}` }, retry: { maxAttempts: 1 } });

  it('the failed branch of a parallel, not the branch that completed', async () => {
    const server = countingServer();
    const engine = await fx.engine();
    const d = def({ id: 'resume-branch', steps: [{ id: 'p', type: 'parallel', branches: { good: [http('okStep', '/ok')], bad: [http('first', '/first'), http('flakyStep', '/flaky')] } }, t('after', '{{steps.p.output.bad.body}}')] });
    const runner = await engine.start({ definition: d });
    expect((await runner.done).status).toBe('FAILED');
    server.fix();
    const resumed = await engine.resume(runner.executionId);
    const outcome = await resumed.done;
    expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
    expect(Object.fromEntries(server.hits)).toEqual({ '/ok': 1, '/first': 1, '/flaky': 2 });
    expect(plainContext(outcome.snapshot.context).outputs.after).toEqual({ path: '/flaky' });
    const records = await fx.log.read(runner.executionId);
    expect(replayExecution(runner.executionId, records).ok).toBe(true);
  });

  it('the current iteration of a loop, not the iterations before it', async () => {
    const server = countingServer();
    const engine = await fx.engine();
    const d = def({
      id: 'resume-loop',
      steps: [{ id: 'l', type: 'loop', maxIterations: 3, steps: [http('first', '/first'), { id: 's', type: 'switch', cases: [{ when: '{% iteration = 2 %}', steps: [http('flakyStep', '/flaky')] }] }] }],
    });
    const runner = await engine.start({ definition: d });
    expect((await runner.done).status).toBe('FAILED');
    expect(Object.fromEntries(server.hits)).toEqual({ '/first': 2, '/flaky': 1 });
    server.fix();
    const outcome = await (await engine.resume(runner.executionId)).done;
    expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
    // iteration 2 continues at its failed step; iteration 3 runs whole
    expect(Object.fromEntries(server.hits)).toEqual({ '/first': 3, '/flaky': 2 });
    const records = await fx.log.read(runner.executionId);
    expect(replayExecution(runner.executionId, records).ok).toBe(true);
    expect(rec(records, 'StepCompleted', 'first').map((r) => r.iteration)).toEqual([1, 2, 3]);
  });
});

describe('resume --from-step inside a container re-runs that part only', () => {
  const hits = new Map<string, number>();
  let fixed = false;
  for (const path of ['/in-a', '/in-b', '/in-c', '/in-flaky']) {
    handlers.set(path, (_req, res) => {
      hits.set(path, (hits.get(path) ?? 0) + 1);
      const fail = path === '/in-flaky' && !fixed;
      res.writeHead(fail ? 500 : 200, { 'content-type': 'application/json' }).end(JSON.stringify({ path }));
    });
  }
  const http = (id: string, path: string, extra: Doc = {}) => ({ id, type: 'http', request: { url: `${base}${path}` }, retry: { maxAttempts: 1 }, ...extra });
  const started = (records: StoredRecord[]) => records.filter((r) => r.record.type === 'StepStarted').map((r) => (r.record as { stepId: string }).stepId);
  const after = (records: StoredRecord[]) => started(records.slice(records.findIndex((r) => r.record.type === 'ExecutionResumed')));
  const reset = () => { hits.clear(); fixed = false; };

  it('a step in a branch: that branch from the step on, not its earlier steps, not the other branch', async () => {
    reset();
    const engine = await fx.engine();
    const d = def({ id: 'from-branch', steps: [t('before'), { id: 'p', type: 'parallel', branches: { good: [http('ga', '/in-a'), t('gb')], bad: [http('first', '/in-b'), http('second', '/in-c'), http('flaky', '/in-flaky')] } }, t('after', '{{steps.p.output.bad.body}}')] });
    const runner = await engine.start({ definition: d });
    expect((await runner.done).status).toBe('FAILED');
    fixed = true;
    const outcome = await (await engine.resume(runner.executionId, { fromStep: 'second' })).done;
    expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
    expect(Object.fromEntries(hits)).toEqual({ '/in-a': 1, '/in-b': 1, '/in-c': 2, '/in-flaky': 2 });
    const records = await fx.log.read(runner.executionId);
    expect(after(records)).toEqual(['second', 'flaky', 'after']);
    expect(records.find((r) => r.record.type === 'ExecutionResumed')!.record).toMatchObject({ fromStep: 'second', reason: 'resume' });
    expect(plainContext(outcome.snapshot.context).outputs.after).toEqual({ path: '/in-flaky' });
    expect(plainContext(outcome.snapshot.context).outputs.p).toMatchObject({ good: 1, bad: { body: { path: '/in-flaky' } } });
    expect(replayExecution(runner.executionId, records).ok).toBe(true);
  });

  it('a step in a graph: the step and the steps that need it, not the others', async () => {
    reset();
    const engine = await fx.engine();
    const d = def({
      id: 'from-graph',
      steps: [{ id: 'g', type: 'graph', steps: [http('ga', '/in-a'), http('gb', '/in-b'), t('gc'), { ...t('gd'), needs: ['ga', 'gb'] }, { ...http('ge', '/in-flaky'), needs: ['gb', 'gc'] }, { ...t('gf'), needs: ['ge'] }] }],
    });
    const runner = await engine.start({ definition: d });
    expect((await runner.done).status).toBe('FAILED');
    fixed = true;
    const outcome = await (await engine.resume(runner.executionId, { fromStep: 'gb' })).done;
    expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
    expect(Object.fromEntries(hits)).toEqual({ '/in-a': 1, '/in-b': 2, '/in-flaky': 2 });
    const records = await fx.log.read(runner.executionId);
    expect(after(records).sort()).toEqual(['gb', 'gd', 'ge', 'gf']);
    expect(replayExecution(runner.executionId, records).ok).toBe(true);
  });

  it('a step in a loop body: the current iteration from that step, with its iteration number', async () => {
    reset();
    const engine = await fx.engine();
    const d = def({
      id: 'from-loop',
      steps: [{ id: 'l', type: 'loop', maxIterations: 2, steps: [http('la', '/in-a'), http('lb', '/in-b'), { id: 's', type: 'switch', cases: [{ when: '{% iteration = 2 %}', steps: [http('lflaky', '/in-flaky')] }] }] }],
    });
    const runner = await engine.start({ definition: d });
    expect((await runner.done).status).toBe('FAILED');
    fixed = true;
    const outcome = await (await engine.resume(runner.executionId, { fromStep: 'lb' })).done;
    expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
    expect(Object.fromEntries(hits)).toEqual({ '/in-a': 2, '/in-b': 3, '/in-flaky': 2 });
    const records = await fx.log.read(runner.executionId);
    const resumedAt = records.findIndex((r) => r.record.type === 'ExecutionResumed');
    expect(rec(records.slice(resumedAt), 'StepStarted', 'lb').map((r) => r.iteration)).toEqual([2]);
    expect(replayExecution(runner.executionId, records).ok).toBe(true);
  });

  it('refuses a step whose earlier step in its block had not completed, naming it', async () => {
    reset();
    const engine = await fx.engine();
    const d = def({ id: 'from-unmet', steps: [{ id: 'p', type: 'parallel', branches: { only: [t('zero'), http('flaky', '/in-flaky'), t('later')] } }] });
    const runner = await engine.start({ definition: d });
    expect((await runner.done).status).toBe('FAILED');
    await expect(engine.resume(runner.executionId, { fromStep: 'later' })).rejects.toThrow("cannot resume from 'later': step 'flaky' before it has not completed");
  });
});

describe('a worker that stops mid-container', () => {
  it('another engine continues it: the completed branch does not run again, the interrupted one does', async () => {
    const hits = new Map<string, number>();
    let release!: () => void;
    let held!: () => void;
    const isHeld = new Promise<void>((r) => { held = r; });
    let hold = true;
    handlers.set('/fast', (_req, res) => { hits.set('fast', (hits.get('fast') ?? 0) + 1); res.writeHead(200, { 'content-type': 'application/json' }).end('{"fast":true}'); });
    handlers.set('/held', (_req, res) => {
      hits.set('held', (hits.get('held') ?? 0) + 1);
      if (!hold) return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"held":true}');
      held();
      release = () => res.destroy();
    });
    const d = def({ id: 'crash-branch', steps: [{ id: 'p', type: 'parallel', branches: { quick: [{ id: 'fast', type: 'http', request: { url: `${base}/fast` } }], slow: [t('pre'), { id: 'held', type: 'http', request: { url: `${base}/held` } }] } }] });
    const first = await fx.engine();
    const runner = await first.start({ definition: d });
    await isHeld;
    // wait until the quick branch is recorded, then stop the first engine without writing anything (as a crash would)
    for (let i = 0; i < 100 && !(await fx.log.read(runner.executionId)).some((r) => r.record.type === 'StepCompleted' && (r.record as { stepId?: string }).stepId === 'fast'); i++) await new Promise((r) => setTimeout(r, 20));
    await first.close();
    hold = false;
    release();
    const second = await fx.engine();
    const outcome = await (await second.resume(runner.executionId)).done;
    expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
    expect(Object.fromEntries(hits)).toEqual({ fast: 1, held: 2 });
    const records = await fx.log.read(runner.executionId);
    expect(rec(records, 'StepStarted', 'pre')).toHaveLength(1);
    expect(records.filter((r) => r.record.type === 'ExecutionResumed').map((r) => (r.record as { reason?: string }).reason)).toEqual(['recovery']);
    expect(replayExecution(runner.executionId, records).ok).toBe(true);
    expect(plainContext(outcome.snapshot.context).outputs.p).toEqual({ quick: expect.objectContaining({ body: { fast: true } }), slow: expect.objectContaining({ body: { held: true } }) });
  });

  it('a failing branch aborts its siblings, also when the parallel continues on error', async () => {
    for (const onError of ['fail', 'continue'] as const) {
      let opened!: () => void;
      const open = new Promise<void>((r) => { opened = r; });
      let aborted = 0;
      handlers.set(`/sibling-${onError}`, (_req, res) => { opened(); res.on('close', () => { if (!res.writableEnded) aborted++; }); });
      const engine = await fx.engine();
      const d = def({
        id: `sibling-abort-${onError}`,
        steps: [{
          id: 'p', type: 'parallel', onError,
          branches: {
            slow: [{ id: 'h', type: 'http', request: { url: `${base}/sibling-${onError}` }, retry: { maxAttempts: 1 } }],
            bad: [{ id: 'wait', type: 'transform', value: 1 }, { id: 'boom', type: 'fail', message: 'no', retry: { maxAttempts: 1 } }],
          },
        }, t('after', 'ran')],
      });
      const runner = await engine.start({ definition: d });
      await open;
      const outcome = await runner.done;
      expect(outcome.status, onError).toBe(onError === 'fail' ? 'FAILED' : 'COMPLETED');
      for (let i = 0; i < 50 && aborted === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(aborted, `${onError}: the sibling's request is aborted`).toBe(1);
      const records = await fx.log.read(runner.executionId);
      expect(rec(records, 'StepCompleted', 'h'), onError).toEqual([]);
      expect(replayExecution(runner.executionId, records).ok).toBe(true);
      if (onError === 'continue') expect(plainContext(outcome.snapshot.context).outputs.p).toEqual({ error: expect.objectContaining({ message: expect.stringContaining('no') }) });
    }
  });

  it('cancelling reaches a loop body', async () => {
    let opened!: () => void;
    const open = new Promise<void>((r) => { opened = r; });
    let aborted = 0;
    handlers.set('/hang-loop', (_req, res) => { opened(); res.on('close', () => { if (!res.writableEnded) aborted++; }); });
    const engine = await fx.engine();
    const runner = await engine.start({ definition: def({ id: 'loopcancel', steps: [{ id: 'l', type: 'loop', maxIterations: 3, steps: [t('a'), { id: 'h', type: 'http', request: { url: `${base}/hang-loop` } }] }] }) });
    await open;
    await engine.cancel(runner.executionId);
    expect((await runner.done).status).toBe('CANCELLED');
    await new Promise((r) => setTimeout(r, 100));
    expect(aborted).toBe(1);
  });
});
