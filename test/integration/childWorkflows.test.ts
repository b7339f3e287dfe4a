/**
 * `workflow` steps on a real nats-server: a child execution of a registered
 * workflow, its output reaching the parent, its failure failing the step,
 * cancellation reaching it (its HTTP request aborted), logs linked both ways,
 * its token usage counted in the parent's, and replay checking the child.
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { def, runToEnd } from '../support/engine.js';
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { Engine } from '../../src/worker/engine.js';
import { WorkflowRegistry } from '../../src/registry/workflows.js';
import { replayWithChildren } from '../../src/log/childReplay.js';
import type { StoredRecord } from '../../src/log/records.js';
import { loadExecution, summarize } from '../../src/log/views.js';
import type { NatsConnection } from '@nats-io/transport-node';
import { createLlmRouter } from '../../src/llm/index.js';
import { llmExecutor } from '../../src/steps/llm.js';
import { defaultExecutors } from '../../src/steps/index.js';
import { pino } from 'pino';
import { CommandBus } from '../../src/bus/commands.js';
import { Worker } from '../../src/worker/worker.js';
import { TimerStore } from '../../src/timers/timerStore.js';

const nats = useNatsServer();
let nc: NatsConnection;
let log: EventLog;
let registry: WorkflowRegistry;
let engine: Engine;

type Doc = Record<string, unknown>;
const t = (id: string, value: unknown = 1, extra: Doc = {}) => ({ id, type: 'transform', value, ...extra });
const rec = (records: StoredRecord[], type: string, stepId?: string) => records.filter((r) => r.record.type === type && (stepId === undefined || (r.record as { stepId?: string }).stepId === stepId)).map((r) => r.record as Record<string, any>);

/** A server whose requests to /hang never get an answer; it tells when one arrives and when one is aborted. */
let server: ReturnType<typeof createServer>;
let base = '';
const arrived: IncomingMessage[] = [];
let aborted = 0;
beforeAll(async () => {
  server = createServer((req) => {
    arrived.push(req);
    req.socket.on('close', () => aborted++);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  nc = await connectNats(nats.url, 'test');
  log = await EventLog.open(nc);
  registry = await WorkflowRegistry.open(nc);
  engine = await Engine.create({ nc, log, registry, executors: defaultExecutors({ llm: llmExecutor(createLlmRouter({})) }) });
  await registry.register(def({ id: 'summarize', steps: [t('sum', { text: '{{input.text}}', words: 2 })] }));
  await registry.register(def({ id: 'broken', steps: [t('ok'), { id: 'boom', type: 'fail', message: 'the child broke' }] }));
  await registry.register(def({ id: 'hangs', steps: [{ id: 'call', type: 'http', request: { url: `${base}/hang` } }] }));
  await registry.register(def({ id: 'naps', steps: [{ id: 'nap', type: 'sleep', durationMs: 400 }, t('woke', { slept: '{{input.text}}' })] }));
  await registry.register(def({ id: 'flaky', steps: [{ id: 'boom', type: 'fail', message: 'try again', retryable: true }] }));
  await registry.register(def({ id: 'thinks', steps: [{ id: 'answer', type: 'llm', prompt: 'say {{input.text}}' }] }));
});
afterAll(async () => {
  await engine?.close();
  await nc?.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const run = (d: Doc, input: unknown = {}) => runToEnd(engine, log, d, input);

describe('workflow step', () => {
  const parent = {
    id: 'parent',
    steps: [t('a', 'hello'), { id: 'child', type: 'workflow', workflowId: 'summarize', input: { text: '{{steps.a.output}}' } }, t('after', { got: '{{steps.child.output}}' })],
  };

  it("runs a child execution whose output is the step's output; the logs name each other; replay checks the child", async () => {
    const { outcome, records, outputs, id } = await run(parent);
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.child).toEqual({ text: 'hello', words: 2 });
    expect(outputs.after).toEqual({ got: { text: 'hello', words: 2 } });
    const [started] = rec(records, 'StepStarted', 'child');
    expect(started.child).toEqual(expect.any(String));
    expect(started.version).toBe(1);
    expect(rec(records, 'StepCompleted', 'child')[0].child).toBe(started.child);
    const childRecords = await log.read(started.child);
    expect(childRecords[0].record).toMatchObject({ type: 'ExecutionStarted', workflowId: 'summarize', parent: { executionId: id, stepId: 'child', attempt: 1 }, input: { text: 'hello' } });
    expect(childRecords.at(-1)!.record).toMatchObject({ type: 'ExecutionCompleted', output: { text: 'hello', words: 2 } });
    expect(summarize(await loadExecution(log, id)).steps.child.child).toBe(started.child);
    expect(summarize(await loadExecution(log, started.child)).parent).toEqual({ executionId: id, stepId: 'child', attempt: 1 });

    const report = await replayWithChildren(id, (x) => log.read(x));
    expect(report.ok, JSON.stringify(report.children)).toBe(true);
    expect(report.children).toEqual([expect.objectContaining({ childId: started.child, ok: true })]);
    expect(report.executions.map((e) => e.executionId)).toEqual([id, started.child]);
  });

  it("replay finds a child whose log does not match the parent's record of it", async () => {
    const first = await run(parent);
    const other = await run(parent);
    const otherChild = rec(other.records, 'StepStarted', 'child')[0].child as string;
    const report = await replayWithChildren(first.id, (x) => (x === first.id ? log.read(x) : log.read(otherChild)));
    expect(report.ok).toBe(false);
    expect(report.children[0].error).toMatch(/belongs to/);
  });

  it('fails the step when the child fails, naming the child', async () => {
    const { outcome, records } = await run({ id: 'p2', steps: [{ id: 'child', type: 'workflow', workflowId: 'broken' }, t('never')] });
    expect(outcome.status).toBe('FAILED');
    const childId = rec(records, 'StepStarted', 'child')[0].child as string;
    const [failed] = rec(records, 'StepFailed', 'child');
    expect(failed.child).toBe(childId);
    expect(failed.error.code).toBe('CHILD_FAILED');
    expect(failed.error.message).toContain(childId);
    expect(failed.error.message).toContain('the child broke');
    expect(rec(records, 'StepStarted', 'never')).toEqual([]);
    expect((await log.read(childId)).at(-1)!.record.type).toBe('ExecutionFailed');
  });

  it('continues with {error} under onError: continue', async () => {
    const { outcome, outputs } = await run({ id: 'p3', steps: [{ id: 'child', type: 'workflow', workflowId: 'broken', onError: 'continue' }, t('next', 'went on')] });
    expect(outcome.status).toBe('COMPLETED');
    expect((outputs.child as any).error.code).toBe('CHILD_FAILED');
  });

  it('fails the step, before any child starts, when the workflow is not registered', async () => {
    const { outcome, records } = await run({ id: 'p4', steps: [{ id: 'child', type: 'workflow', workflowId: 'nowhere' }] });
    expect(outcome.status).toBe('FAILED');
    expect(rec(records, 'StepFailed', 'child')[0].error.code).toBe('WORKFLOW_NOT_FOUND');
    expect(rec(records, 'StepStarted', 'child')).toEqual([]);
  });

  it('fails the step, before any child starts, when the workflow is disabled; a child already started runs on', async () => {
    await registry.register(def({ id: 'paused', steps: [t('p', 1)] }));
    await registry.setDisabled('paused', true);
    const { outcome, records } = await run({ id: 'p4d', steps: [{ id: 'child', type: 'workflow', workflowId: 'paused' }] });
    expect(outcome.status).toBe('FAILED');
    expect(rec(records, 'StepFailed', 'child')[0].error).toMatchObject({ code: 'WORKFLOW_DISABLED', retryable: false });
    expect(rec(records, 'StepStarted', 'child')).toEqual([]);
    await registry.setDisabled('paused', false);
    expect((await run({ id: 'p4e', steps: [{ id: 'child', type: 'workflow', workflowId: 'paused' }] })).outcome.status).toBe('COMPLETED');
  });

  it('retries a step whose child failed retryably, each attempt a new child', async () => {
    const { outcome, records } = await run({ id: 'p8', steps: [{ id: 'child', type: 'workflow', workflowId: 'flaky', retry: { maxAttempts: 2, initialDelayMs: 0 } }] });
    expect(outcome.status).toBe('FAILED');
    const starts = rec(records, 'StepStarted', 'child');
    expect(starts.map((r) => r.attempt)).toEqual([1, 2]);
    expect(new Set(starts.map((r) => r.child)).size).toBe(2);
    expect(rec(records, 'StepFailed', 'child').map((r) => r.child)).toEqual(starts.map((r) => r.child));
  });

  it('cancelling the parent cancels the child and aborts its HTTP request', async () => {
    const before = arrived.length;
    const abortedBefore = aborted;
    const runner = await engine.start({ definition: def({ id: 'p5', steps: [{ id: 'child', type: 'workflow', workflowId: 'hangs' }] }) });
    await expect.poll(() => arrived.length, { timeout: 10_000 }).toBe(before + 1);
    await engine.cancel(runner.executionId, 'enough');
    expect((await runner.done).status).toBe('CANCELLED');
    const childId = rec(await log.read(runner.executionId), 'StepStarted', 'child')[0].child as string;
    await expect.poll(async () => (await log.last(childId))?.record.type, { timeout: 10_000 }).toBe('ExecutionCancelled');
    await expect.poll(() => aborted, { timeout: 10_000 }).toBeGreaterThan(abortedBefore);
  });

  it("counts the child's token usage in the parent's", async () => {
    const { outcome, records } = await run({ id: 'p6', steps: [{ id: 'child', type: 'workflow', workflowId: 'thinks', input: { text: 'four words right here' } }] });
    expect(outcome.status).toBe('COMPLETED');
    const childId = rec(records, 'StepStarted', 'child')[0].child as string;
    const childUsage = (rec(await log.read(childId), 'StepCompleted', 'answer')[0].usage);
    expect(childUsage.totalTokens).toBeGreaterThan(0);
    expect(outcome.snapshot.context.usage).toEqual(childUsage);
    expect(rec(records, 'StepCompleted', 'child')[0].usage).toEqual(childUsage);
  });

  it("gives the child what is left of the parent's budget", async () => {
    const { records } = await run({ id: 'p7', budget: { maxTokens: 500 }, steps: [{ id: 'child', type: 'workflow', workflowId: 'thinks', input: { text: 'x' } }] });
    const childId = rec(records, 'StepStarted', 'child')[0].child as string;
    expect((await log.read(childId))[0].record).toMatchObject({ budget: { maxTokens: 500 } });
  });

  it('on a worker: the child starts and reports by commands; the parent waits passivated, and the report brings it back', async () => {
    const wnc = await connectNats(nats.url, 'worker');
    const bus = await CommandBus.open(wnc, { consumer: { ackWaitMs: 5000 } });
    // With a timer store a worker lets a waiting execution go (passivates it): the child's end must bring the parent back.
    const timers = await TimerStore.open(wnc);
    const workerEngine = await Engine.create({ nc: wnc, log: await EventLog.open(wnc), bus, timers, registry: await WorkflowRegistry.open(wnc) });
    const worker = new Worker({ engine: workerEngine, bus, timers, logger: pino({ level: 'silent' }) });
    await worker.start();
    try {
      const executionId = `wf-worker-${process.pid}`;
      const slow = { id: 'wf-slow', steps: [t('a', 'hello'), { id: 'child', type: 'workflow', workflowId: 'naps', input: { text: '{{steps.a.output}}' } }, t('after', { got: '{{steps.child.output}}' })] };
      await bus.publish('start', { executionId, definition: slow }, executionId);
      // The parent waits for its child, and its worker lets it go meanwhile.
      await expect.poll(async () => (await log.last(executionId))?.record.type === 'StepStarted' && !workerEngine.runners.has(executionId), { timeout: 10_000, interval: 20 }).toBe(true);
      await expect.poll(async () => (await log.last(executionId))?.record.type, { timeout: 20_000, interval: 100 }).toBe('ExecutionCompleted');
      const records = await log.read(executionId);
      expect(rec(records, 'StepCompleted', 'after')[0].output).toEqual({ got: { slept: 'hello' } });
      expect((await replayWithChildren(executionId, (x) => log.read(x))).ok).toBe(true);
    } finally {
      await worker.stop();
      await wnc.close();
    }
  });
});
