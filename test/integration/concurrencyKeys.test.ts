/**
 * Concurrency and rate keys (src/concurrency) with a real nats-server, real
 * workers and a real HTTP server that counts the requests open at once: a key
 * never has more holders than its limit, queued work starts in FIFO order per
 * key and is recorded (StepQueued, then StepStarted with queuedMs), keys do
 * not block each other, and an execution-level key queues whole executions.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { until } from '../support/processes.js';
import { startLeaseWorker, type TestWorker } from '../support/leases.js';
import { loadExecution } from '../../src/log/views.js';
import { EventLog } from '../../src/log/eventLog.js';
import { replayExecution } from '../../src/log/replay.js';
import { ExecutionNotFoundError } from '../../src/errors.js';
import { Kvm } from '@nats-io/kv';
import { TIMERS_BUCKET } from '../../src/nats/names.js';
import type { LogRecord } from '../../src/log/records.js';
import { createLlmRouter } from '../../src/llm/index.js';
import { llmExecutor } from '../../src/steps/llm.js';
import { defaultExecutors } from '../../src/steps/index.js';

const nats = useNatsServer();

/**
 * Token rate of the token tests: each token holds its key MS_PER_TOKEN ms, so the `local` provider's
 * few dozen tokens hold it for seconds, longer than a busy machine takes to submit the next one.
 */
const TOKENS_PER_MINUTE = 1200;
const MS_PER_TOKEN = 60_000 / TOKENS_PER_MINUTE;

/**
 * Holds each request `?ms=` ms (a key in `held` holds its requests until the test lets it go, then
 * `ms`); counts the requests open at once, per `?key=`, and their arrival order.
 */
interface Counting { server: Server; url: string; open: Map<string, number>; max: Map<string, number>; arrivals: string[]; held: Map<string, Promise<void>> }
function startCountingServer(): Promise<Counting> {
  const c = { open: new Map<string, number>(), max: new Map<string, number>(), arrivals: [] as string[], held: new Map() } as Counting;
  c.server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const key = u.searchParams.get('key') ?? '';
    const ms = Number(u.searchParams.get('ms') ?? 0);
    c.arrivals.push(u.searchParams.get('id') ?? '');
    c.open.set(key, (c.open.get(key) ?? 0) + 1);
    c.max.set(key, Math.max(c.max.get(key) ?? 0, c.open.get(key)!));
    void (c.held.get(key) ?? Promise.resolve()).then(() => setTimeout(() => {
      c.open.set(key, c.open.get(key)! - 1);
      if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    }, ms));
  });
  return new Promise((r) => c.server.listen(0, '127.0.0.1', () => r({ ...c, url: `http://127.0.0.1:${(c.server.address() as { port: number }).port}` })));
}

let counting: Counting;
let workers: TestWorker[] = [];
let log: EventLog;

beforeAll(async () => {
  counting = await startCountingServer();
  // The built-in `local` provider answers llm steps (model `default`) and reports their token usage.
  const executors = () => defaultExecutors({ llm: llmExecutor(createLlmRouter({})) });
  workers = [await startLeaseWorker(nats.url, 'w1', { executors: executors() }), await startLeaseWorker(nats.url, 'w2', { executors: executors() })];
  log = await EventLog.open(workers[0].nc);
});
afterAll(async () => {
  for (const w of workers) await w.stop();
  counting?.server.closeAllConnections();
  await new Promise((r) => counting?.server.close(r));
});

const records = async (id: string): Promise<LogRecord[]> => {
  try { return (await loadExecution(log, id)).records.map((r) => r.record); } catch (err) { if (err instanceof ExecutionNotFoundError) return []; throw err; }
};
/**
 * Waits for the execution to end; if it does not, says what its log and its pending timers show
 * (a queued execution is woken by its rate timer: a timer still pending means no worker acted on it).
 */
async function untilEnded(id: string, timeoutMs: number): Promise<void> {
  try {
    await until(`${id} to end`, () => ended(id), timeoutMs);
  } catch (err) {
    const kv = await new Kvm(workers[0].nc).open(TIMERS_BUCKET);
    const timers: string[] = [];
    for await (const key of await kv.keys(`${id}.>`)) timers.push(`${key} = ${(await kv.get(key))?.string()}`);
    const recs = (await records(id)).map((r) => `${r.type}${'until' in r && r.until ? ` until ${r.until}` : ''} at ${r.at}`);
    throw new Error(`${(err as Error).message}\nrecords: ${recs.join('; ')}\ntimers: ${timers.join('; ') || 'none'}\nnow: ${new Date().toISOString()}`);
  }
}
const ended = async (id: string) => (await records(id)).some((r) => r.type === 'ExecutionCompleted' || r.type === 'ExecutionFailed');
async function submit(definition: unknown, input: unknown): Promise<string> {
  const executionId = `cc-${randomUUID()}`;
  await workers[0].bus.publish('start', { executionId, definition, input }, executionId);
  return executionId;
}
/**
 * Queued work starts in FIFO order per key. Slots freed together admit the next `limit` waiters
 * at once, and their requests then race to the server: so each of the first k arrivals must be
 * among the first k + limit - 1 queued (LIFO or random order fails this; a swap of neighbours
 * admitted together does not).
 */
function expectFifo(arrivals: string[], queued: string[], limit: number): void {
  expect([...arrivals].sort()).toEqual([...queued].sort());
  for (const [k, id] of arrivals.entries()) expect(queued.indexOf(id), `arrival ${k} (${id})`).toBeLessThan(k + limit);
}
const callStep = (key: string, ms: number) => ({
  id: 'call', type: 'http',
  concurrency: [{ key: '{{input.tenant}}', limit: 2 }],
  request: { method: 'GET', url: `${'{{input.url}}'}?key=${key}&ms=${ms}&id={{execution.id}}` },
});

describe('concurrency keys', () => {
  it('10 executions with one key and limit 2: never more than 2 at once, all complete, FIFO, recorded', async () => {
    const definition = { id: 'tenant-calls', steps: [callStep('t1', 300)] };
    // The first two requests are held until all ten are admitted or queued, however slow the machine.
    let letGo!: () => void;
    counting.held.set('t1', new Promise<void>((r) => { letGo = r; }));
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = await submit(definition, { tenant: 't1', url: counting.url });
      ids.push(id);
      // One at a time into the key's queue: the order of submission is the order of arrival there.
      await until(`execution ${i} to be admitted or queued`, async () => (await records(id)).some((r) => r.type === 'StepStarted' || r.type === 'StepQueued'), 20_000);
    }
    letGo();
    for (const id of ids) await until(`${id} to end`, () => ended(id), 60_000);
    // Every lease was given back or handed over: none is still renewed (a runner that lost its
    // execution to another worker kept renewing the lease that worker had given back).
    await until('no worker to renew a lease', async () => workers.every((w) => w.admission.holders === 0), 5000);

    expect(counting.max.get('t1')).toBe(2);
    const logs = await Promise.all(ids.map(records));
    for (const [i, recs] of logs.entries()) expect(recs.at(-1)?.type, `execution ${i}`).toBe('ExecutionCompleted');
    expectFifo(counting.arrivals.filter((a) => ids.includes(a)), ids, 2);
    const queued = logs.filter((recs) => recs.some((r) => r.type === 'StepQueued'));
    expect(queued.length).toBe(8);
    for (const recs of queued) {
      const q = recs.find((r) => r.type === 'StepQueued') as Extract<LogRecord, { type: 'StepQueued' }>;
      expect(q).toMatchObject({ stepId: 'call', keys: ['t1'], reason: 'concurrency' });
      const s = recs.find((r) => r.type === 'StepStarted') as Extract<LogRecord, { type: 'StepStarted' }>;
      expect(s.keys).toEqual(['t1']);
      expect(s.queuedMs).toBeGreaterThan(0);
    }
    for (const [i, id] of ids.entries()) {
      const report = replayExecution(id, (await loadExecution(log, id)).records);
      expect(report.ok, `replay of execution ${i}`).toBe(true);
    }
    expect((await workers[0].admission.store.read('t1'))).toMatchObject({ leases: [], queue: [] });
  }, 120_000);

  it('different keys do not block each other', async () => {
    const definition = { id: 'tenant-slow', steps: [{ ...callStep('slow', 4000), concurrency: [{ key: '{{input.tenant}}', limit: 1 }] }] };
    const a1 = await submit(definition, { tenant: 'a', url: counting.url });
    await until('a1 to start', async () => (await records(a1)).some((r) => r.type === 'StepStarted'), 20_000);
    const a2 = await submit(definition, { tenant: 'a', url: counting.url });
    await until('a2 to be queued', async () => (await records(a2)).some((r) => r.type === 'StepQueued'), 20_000);
    const b = await submit({ ...definition, steps: [{ ...definition.steps[0], request: { method: 'GET', url: `${counting.url}?key=b&ms=10&id={{execution.id}}` } }] }, { tenant: 'b', url: counting.url });
    await until('b to end', () => ended(b), 20_000);
    // a1 still holds key a (its request takes 4 s), a2 still waits for it.
    expect(await ended(a1)).toBe(false);
    expect((await records(a2)).some((r) => r.type === 'StepStarted')).toBe(false);
    for (const id of [a1, a2]) await until(`${id} to end`, () => ended(id), 30_000);
  }, 60_000);

  it('a queued execution that is cancelled leaves the queue; the one behind it runs when the slot frees', async () => {
    const definition = { id: 'cancel-queued', steps: [{ ...callStep('cq', 1500), concurrency: [{ key: 'cq-{{input.tenant}}', limit: 1 }] }] };
    const holder = await submit(definition, { tenant: 'z', url: counting.url });
    await until('the holder to start', async () => (await records(holder)).some((r) => r.type === 'StepStarted'), 20_000);
    const gone = await submit(definition, { tenant: 'z', url: counting.url });
    await until('the second to be queued', async () => (await records(gone)).some((r) => r.type === 'StepQueued'), 20_000);
    const next = await submit(definition, { tenant: 'z', url: counting.url });
    await until('the third to be queued', async () => (await records(next)).some((r) => r.type === 'StepQueued'), 20_000);
    await workers[0].bus.publish('cancel', { executionId: gone, reason: 'not needed' }, `cancel:${gone}`);
    await until('the second to be cancelled', async () => (await records(gone)).at(-1)?.type === 'ExecutionCancelled', 20_000);
    for (const id of [holder, next]) await until(`${id} to end`, () => ended(id), 30_000);
    expect((await records(next)).at(-1)?.type).toBe('ExecutionCompleted');
    expect(counting.arrivals).not.toContain(gone);
    await until('the key to be empty', async () => {
      const s = await workers[0].admission.store.read('cq-z');
      return s?.leases.length === 0 && s.queue.length === 0;
    }, 20_000);
  }, 60_000);

  it('two steps of a parallel group on one key of limit 1 run one after the other, in one execution', async () => {
    const step = (id: string) => ({ id, type: 'http', concurrency: [{ key: 'pair-{{execution.id}}', limit: 1 }], request: { method: 'GET', url: `${counting.url}?key=pair&ms=300&id={{execution.id}}` } });
    const id = await submit({ id: 'pair', steps: [step('left'), step('right'), { id: 'join', type: 'transform', value: 'both' }], parallel: [['left', 'right']] }, {});
    await until('it to end', () => ended(id), 30_000);
    const recs = await records(id);
    expect(recs.at(-1)?.type).toBe('ExecutionCompleted');
    expect(counting.max.get('pair')).toBe(1);
    expect(recs.filter((r) => r.type === 'StepQueued')).toHaveLength(1);
  }, 40_000);

  it('a key that gives nothing fails its step with INVALID_KEY, naming the path', async () => {
    const definition = { id: 'bad-key', steps: [{ id: 'only', type: 'transform', value: 1, concurrency: [{ key: '{% input.missing %}', limit: 1 }] }] };
    const id = await submit(definition, {});
    await until('it to end', () => ended(id), 20_000);
    const failed = (await records(id)).find((r) => r.type === 'StepFailed') as Extract<LogRecord, { type: 'StepFailed' }>;
    expect(failed.error).toMatchObject({ code: 'INVALID_KEY', message: expect.stringContaining('steps[0].concurrency[0].key') });
  }, 30_000);

  it('a workflow-level key: at most N executions of the key run at once; the others queue, recorded', async () => {
    const definition = {
      id: 'per-tenant-runs',
      concurrency: [{ key: 'runs-{{input.tenant}}', limit: 1 }],
      steps: [
        { id: 'first', type: 'http', request: { method: 'GET', url: `${counting.url}?key=wf&ms=200&id={{execution.id}}` } },
        { id: 'second', type: 'http', request: { method: 'GET', url: `${counting.url}?key=wf&ms=200&id={{execution.id}}` } },
      ],
    };
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await submit(definition, { tenant: 'x' }));
    for (const id of ids) await until(`${id} to end`, () => ended(id), 60_000);
    expect(counting.max.get('wf')).toBe(1);
    const logs = await Promise.all(ids.map(records));
    for (const recs of logs) {
      expect(recs.at(-1)?.type).toBe('ExecutionCompleted');
      expect(recs.find((r) => r.type === 'ExecutionAdmitted')).toMatchObject({ keys: ['runs-x'] });
    }
    expect(logs.filter((recs) => recs.some((r) => r.type === 'ExecutionQueued')).length).toBeGreaterThanOrEqual(3);
    for (const id of ids) expect(replayExecution(id, (await loadExecution(log, id)).records).ok).toBe(true);
  }, 90_000);
});

describe('rate keys', () => {
  it('30 llm steps at perMinute 600 (10/s) start at least 2.9 s apart first to last, spread evenly, queued with their reserved time', async () => {
    const definition = { id: 'rated-llm', steps: [{ id: 'ask', type: 'llm', prompt: 'hello {{input.n}}', rateLimit: { key: 'llm-{{input.account}}', perMinute: 600 } }] };
    const ids: string[] = [];
    for (let n = 0; n < 30; n++) ids.push(await submit(definition, { n, account: 'acme' }));
    for (const id of ids) await until(`${id} to end`, () => ended(id), 60_000);
    const logs = await Promise.all(ids.map(records));
    const starts = logs.map((recs) => {
      expect(recs.at(-1)?.type).toBe('ExecutionCompleted');
      const s = recs.find((r) => r.type === 'StepStarted')!;
      expect(s).toMatchObject({ keys: ['llm-acme'] });
      return Date.parse(s.at);
    }).sort((a, b) => a - b);
    expect(starts.at(-1)! - starts[0]).toBeGreaterThanOrEqual(2850);
    const queued = logs.flatMap((recs) => recs.filter((r) => r.type === 'StepQueued')) as Extract<LogRecord, { type: 'StepQueued' }>[];
    expect(queued.length).toBeGreaterThanOrEqual(25);
    for (const q of queued) expect(q).toMatchObject({ reason: 'rate', keys: ['llm-acme'], until: expect.any(String) });
    // The reserved times are 100 ms apart (the spacing 600 a minute gives), and no step started before its own.
    const reserved = queued.map((q) => Date.parse(q.until!)).sort((x, y) => x - y);
    for (let i = 1; i < reserved.length; i++) expect(reserved[i] - reserved[i - 1], `reserved times ${i - 1} and ${i}`).toBeGreaterThanOrEqual(99);
    for (const recs of logs) {
      const q = recs.find((r) => r.type === 'StepQueued') as Extract<LogRecord, { type: 'StepQueued' }> | undefined;
      if (q) expect(Date.parse(recs.find((r) => r.type === 'StepStarted')!.at)).toBeGreaterThanOrEqual(Date.parse(q.until!) - 2);
    }
  }, 90_000);

  it('tokensPerMinute: the tokens an llm step used (from its recorded usage) hold the next start back', async () => {
    const definition = { id: 'token-rated', steps: [{ id: 'ask', type: 'llm', prompt: 'say something fairly long please', rateLimit: { key: 'tokens-{{input.account}}', tokensPerMinute: TOKENS_PER_MINUTE } }] };
    const first = await submit(definition, { account: 'beta' });
    await until('the first to end', () => ended(first), 20_000);
    const done = (await records(first)).find((r) => r.type === 'StepCompleted') as Extract<LogRecord, { type: 'StepCompleted' }>;
    const tokens = done.usage!.totalTokens;
    expect(tokens).toBeGreaterThan(0);
    await until('the tokens to be counted', async () => ((await workers[0].admission.store.readRate('tokens-beta'))?.tokensNext ?? 0) > 0, 10_000);
    const second = await submit(definition, { account: 'beta' });
    await until('the second to end', () => ended(second), 30_000);
    const recs = await records(second);
    const q = recs.find((r) => r.type === 'StepQueued') as Extract<LogRecord, { type: 'StepQueued' }>;
    expect(q, 'the second is queued').toBeDefined();
    expect(Date.parse(q.until!) - Date.parse(done.at)).toBeGreaterThanOrEqual(tokens * MS_PER_TOKEN - 50);
    const started = recs.find((r) => r.type === 'StepStarted')!;
    expect(Date.parse(started.at)).toBeGreaterThanOrEqual(Date.parse(q.until!) - 2);
  }, 60_000);

  it('a workflow-level rateLimit: executions are admitted at most perMinute, each queued one waiting for its reserved time', async () => {
    const definition = { id: 'rated-runs', rateLimit: { key: 'runs-{{input.account}}', perMinute: 120 }, steps: [{ id: 'only', type: 'transform', value: 1 }] };
    const ids: string[] = [];
    for (let n = 0; n < 4; n++) ids.push(await submit(definition, { account: 'gamma' }));
    for (const id of ids) await untilEnded(id, 30_000);
    const logs = await Promise.all(ids.map(records));
    const queued = logs.flatMap((recs) => recs.filter((r) => r.type === 'ExecutionQueued')) as Extract<LogRecord, { type: 'ExecutionQueued' }>[];
    expect(queued.length).toBeGreaterThanOrEqual(3);
    for (const q of queued) expect(q).toMatchObject({ reason: 'rate', keys: ['runs-gamma'], until: expect.any(String) });
    const reserved = queued.map((q) => Date.parse(q.until!)).sort((x, y) => x - y);
    for (let i = 1; i < reserved.length; i++) expect(reserved[i] - reserved[i - 1]).toBeGreaterThanOrEqual(499);
    for (const recs of logs) {
      expect(recs.at(-1)?.type).toBe('ExecutionCompleted');
      const q = recs.find((r) => r.type === 'ExecutionQueued') as Extract<LogRecord, { type: 'ExecutionQueued' }> | undefined;
      const admitted = recs.find((r) => r.type === 'ExecutionAdmitted')!;
      if (q) expect(Date.parse(admitted.at)).toBeGreaterThanOrEqual(Date.parse(q.until!) - 2);
      expect(recs.findIndex((r) => r.type === 'ExecutionAdmitted')).toBeLessThan(recs.findIndex((r) => r.type === 'StepStarted'));
    }
    for (const id of ids) expect(replayExecution(id, (await loadExecution(log, id)).records).ok).toBe(true);
  }, 60_000);

  it('an execution whose reserved time passes while its ExecutionQueued is being recorded is admitted, not left queued', async () => {
    // 5 ms apart: a queued execution's reserved time has usually passed by the time its record is
    // stored, so it is admitted at once, while the ExecutionQueued record is still settling.
    const definition = { id: 'rated-fast', rateLimit: { key: 'runs-fast', perMinute: 12_000 }, steps: [{ id: 'only', type: 'transform', value: 1 }] };
    const ids = await Promise.all(Array.from({ length: 20 }, () => submit(definition, {})));
    for (const id of ids) await untilEnded(id, 15_000);
    const logs = await Promise.all(ids.map(records));
    expect(logs.filter((recs) => recs.some((r) => r.type === 'ExecutionQueued')).length).toBeGreaterThan(0);
    for (const recs of logs) expect(recs.at(-1)?.type).toBe('ExecutionCompleted');
  }, 60_000);

  it('a workflow-level tokensPerMinute: the tokens all its llm steps used hold the next execution back', async () => {
    const definition = { id: 'token-runs', rateLimit: { key: 'flow-tokens', tokensPerMinute: TOKENS_PER_MINUTE }, steps: [{ id: 'ask', type: 'llm', prompt: 'tell me a story of some length' }, { id: 'again', type: 'llm', prompt: 'and another one' }] };
    const first = await submit(definition, {});
    await until('the first to end', () => ended(first), 20_000);
    const done = (await records(first)).filter((r) => r.type === 'StepCompleted') as Extract<LogRecord, { type: 'StepCompleted' }>[];
    const tokens = done.reduce((n, r) => n + (r.usage?.totalTokens ?? 0), 0);
    await until('the tokens to be counted', async () => ((await workers[0].admission.store.readRate('flow-tokens'))?.tokensNext ?? 0) >= Date.parse(done.at(-1)!.at) + tokens * MS_PER_TOKEN - 100, 10_000);
    const second = await submit(definition, {});
    await until('the second to end', () => ended(second), 30_000);
    const q = (await records(second)).find((r) => r.type === 'ExecutionQueued') as Extract<LogRecord, { type: 'ExecutionQueued' }>;
    expect(q).toMatchObject({ reason: 'rate' });
    expect(Date.parse(q.until!) - Date.parse(done[0].at)).toBeGreaterThanOrEqual(tokens * MS_PER_TOKEN - 100);
  }, 60_000);
});
