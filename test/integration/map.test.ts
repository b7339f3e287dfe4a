/**
 * `map` steps on a real nats-server, each item a child execution (blocks that
 * are not pure; pure ones run inline: mapInline.test.ts): 0, 1 and 1,000 items; maxConcurrency held (a real HTTP server counts the requests
 * open at once); tolerated failures; items known only at run time; a parallel
 * inside an item and a map inside a parallel branch; a resume that re-runs
 * only the failed items; replay checking every item's log.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { useNatsServer } from '../support/nats.js';
import { def, runToEnd } from '../support/engine.js';
import { plainContext } from '../support/context.js';
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { Engine } from '../../src/worker/engine.js';
import { replayWithChildren } from '../../src/log/childReplay.js';
import type { StoredRecord } from '../../src/log/records.js';
import { loadExecution, summarize } from '../../src/log/views.js';
import { pino } from 'pino';
import { CommandBus } from '../../src/bus/commands.js';
import { Worker } from '../../src/worker/worker.js';

const nats = useNatsServer();
let nc: NatsConnection;
let log: EventLog;
let engine: Engine;

type Doc = Record<string, unknown>;
const t = (id: string, value: unknown = 1, extra: Doc = {}) => ({ id, type: 'transform', value, ...extra });
const rec = (records: StoredRecord[], type: string, stepId?: string) => records.filter((r) => r.record.type === type && (stepId === undefined || (r.record as { stepId?: string }).stepId === stepId)).map((r) => r.record as Record<string, any>);

/** /slow/<n>: answers after 40 ms, counting requests open at once; /flaky/<n>: 500 for the items in `broken`. */
let server: ReturnType<typeof createServer>;
let base = '';
let open = 0;
let maxOpen = 0;
const hits = new Map<string, number>();
const broken = new Set<string>();
let hangsClosed = 0;
beforeAll(async () => {
  server = createServer((req, res: ServerResponse) => {
    const url = req.url ?? '';
    hits.set(url, (hits.get(url) ?? 0) + 1);
    if (url.startsWith('/slow/') || url.startsWith('/slower/')) {
      open++;
      maxOpen = Math.max(maxOpen, open);
      res.on('close', () => open--); // answered or aborted
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ n: Number(url.slice(url.lastIndexOf('/') + 1).replace('w', '')) })), url.startsWith('/slow/') ? 40 : 150);
    } else if (url.startsWith('/hang/')) {
      res.on('close', () => hangsClosed++);
    } else if (url.startsWith('/flaky/')) {
      if (broken.has(url.slice(7))) res.writeHead(500).end('down');
      else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: url.slice(7) }));
    } else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  nc = await connectNats(nats.url, 'test');
  log = await EventLog.open(nc);
  engine = await Engine.create({ nc, log });
});
afterAll(async () => {
  await engine?.close();
  await nc?.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const run = (d: Doc, input: unknown = {}) => runToEnd(engine, log, d, input);

const map = (id: string, items: string, steps: unknown[], extra: Doc = {}) => ({ id, type: 'map', items, steps, ...extra });
/** A step that never runs and keeps a block of transforms from being pure: its items are child executions. */
const viaChildren = { id: 'gate', type: 'fail', when: '{{input.never}}' };

describe('map', () => {
  it('0 items: output [], no child', async () => {
    const { outcome, outputs, records } = await run({ id: 'm0', steps: [map('m', '{{input.docs}}', [t('x', '{{item}}')]), t('after', '{{steps.m.output}}')] }, { docs: [] });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.m).toEqual([]);
    expect(outputs.after).toEqual([]);
    expect(rec(records, 'StepStarted', 'm')).toEqual([expect.objectContaining({ count: 0, items: [] })]);
  });

  it("1 item: its block's last output, from a child execution that says which item it is; replay checks it", async () => {
    const { outcome, outputs, records, id } = await run({ id: 'm1', steps: [map('m', '{{input.docs}}', [viaChildren, t('x', { doc: '{{item}}', i: '{{index}}' }), t('y', { wrapped: '{{steps.x.output}}', by: '{{input.who}}' })])] }, { docs: ['a'], who: 'me' });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.m).toEqual([{ wrapped: { doc: 'a', i: 0 }, by: 'me' }]);
    const [start] = rec(records, 'StepStarted', 'm').filter((r) => r.launch !== undefined);
    expect(start.launch).toEqual([{ index: 0, child: expect.any(String) }]);
    const item = start.launch[0];
    expect(rec(records, 'StepCompleted', 'm').find((r) => r.results)!.results).toEqual([{ index: 0, child: item.child, output: { wrapped: { doc: 'a', i: 0 }, by: 'me' } }]);
    const child = await log.read(item.child);
    expect(child[0].record).toMatchObject({ parent: { executionId: id, stepId: 'm', index: 0 }, outer: { item: 'a', index: 0 } });
    for (const r of child.filter((c) => "stepId" in c.record)) expect((r.record as { item?: number }).item).toBe(0);
    const report = await replayWithChildren(id, (x) => log.read(x));
    expect(report.ok, JSON.stringify(report)).toBe(true);
    // The child's summary names its parent step.
    expect(summarize(await loadExecution(log, item.child)).parent).toEqual({ executionId: id, stepId: 'm', attempt: 1, index: 0 });
  });

  it('1,000 items: every output in item order', async () => {
    const docs = Array.from({ length: 1000 }, (_, i) => `d${i}`);
    const { outcome, outputs, records } = await run({ id: 'm1000', steps: [map('m', '{{input.docs}}', [viaChildren, t('x', { doc: '{{item}}', i: '{{index}}' })], { maxConcurrency: 64 })] }, { docs });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.m).toEqual(docs.map((doc, i) => ({ doc, i })));
    // Starts and results come several to a record: far fewer than two records per item.
    const launched = rec(records, 'StepStarted', 'm').flatMap((r) => r.launch ?? []);
    expect(launched.map((l) => l.index)).toEqual(docs.map((_, i) => i));
    expect(rec(records, 'StepCompleted', 'm').flatMap((r) => r.results ?? [])).toHaveLength(1000);
    expect(records.length).toBeLessThan(2000);
  }, 60_000);

  it('never has more than maxConcurrency items running (and does reach it)', async () => {
    maxOpen = 0;
    const { outcome, outputs } = await run({ id: 'mc', steps: [map('m', '{% [1,2,3,4,5,6,7] %}', [{ id: 'call', type: 'http', request: { url: `${base}/slow/{{item}}` } }], { maxConcurrency: 2 })] });
    expect(outcome.status).toBe('COMPLETED');
    expect((outputs.m as any[]).map((o) => o.body.n)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(maxOpen).toBe(2);
  });

  const evens = (tolerated: number) => ({
    id: 'mt',
    steps: [map('m', '{{input.items}}', [{ id: 'check', type: 'fail', when: '{% item % 2 = 0 %}', message: 'even' }, t('out', '{{item}}')], { toleratedFailures: tolerated, maxConcurrency: 4 })],
  });

  it('tolerated failures give {error} in their place', async () => {
    const { outcome, outputs } = await run(evens(2), { items: [1, 2, 3, 4] });
    expect(outcome.status).toBe('COMPLETED');
    const out = outputs.m as any[];
    expect([out[0], out[2]]).toEqual([1, 3]);
    expect(out[1].error).toMatchObject({ code: 'CHILD_FAILED' });
    expect(out[1].error.message).toMatch(/item 1 of map 'm'.*even/);
  });

  it('one failure more than tolerated fails the map, naming the item', async () => {
    const { outcome, records } = await run(evens(1), { items: [1, 2, 3, 4] });
    expect(outcome.status).toBe('FAILED');
    expect(outcome.snapshot.context.error).toMatchObject({ code: 'CHILD_FAILED' });
    expect(outcome.snapshot.context.error!.message).toMatch(/item 3 of map 'm'/);
    expect(rec(records, 'ExecutionFailed')[0].stepId).toBe('m');
  });

  it('takes items known only at run time, from an earlier step, and reads outer steps inside', async () => {
    const { outcome, outputs } = await run({
      id: 'mr',
      steps: [t('list', '{% [1, 2, 3].($ * 10) %}'), t('label', 'n'), map('m', '{% steps.list.output %}', [t('x', { label: '{{steps.label.output}}', v: '{% item + index %}' })])],
    });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.m).toEqual([{ label: 'n', v: 10 }, { label: 'n', v: 21 }, { label: 'n', v: 32 }]);
  });

  it('refuses items that are not an array, naming the path', async () => {
    const { outcome } = await run({ id: 'mn', steps: [map('m', '{{input.docs}}', [t('x')])] }, { docs: 'nope' });
    expect(outcome.status).toBe('FAILED');
    expect(outcome.snapshot.context.error).toMatchObject({ code: 'ITEMS_NOT_ARRAY' });
    expect(outcome.snapshot.context.error!.message).toContain('steps[0].items');
  });

  it('runs a parallel inside an item, and a map inside a parallel branch', async () => {
    const { outcome, outputs } = await run({
      id: 'mp',
      steps: [{
        id: 'p', type: 'parallel', branches: {
          left: [map('m', '{% [1, 2] %}', [{ id: 'inner', type: 'parallel', branches: { a: [t('a1', '{% item * 2 %}')], b: [t('b1', '{% item * 3 %}')] } }])],
          right: [t('r', 'right')],
        },
      }],
    });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.p).toEqual({ left: [{ a: 2, b: 3 }, { a: 4, b: 6 }], right: 'right' });
  });

  it('a map inside a loop: the block reads the iteration, and the map runs afresh each round', async () => {
    const { outcome, outputs } = await run({
      id: 'ml',
      steps: [{ id: 'l', type: 'loop', maxIterations: 2, steps: [map('m', '{% [1, 2] %}', [t('x', '{% item * 10 + iteration %}')])] }],
    });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.l).toEqual([12, 22]);
  });

  it('a map inside a map item', async () => {
    const { outcome, outputs } = await run({
      id: 'mm',
      steps: [map('outer', '{% [[1, 2], [3]] %}', [map('inner', '{% item %}', [t('x', '{% item * 10 %}')])])],
    });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.outer).toEqual([[10, 20], [30]]);
  });

  it('keeps maxConcurrency across a crash: another engine recovers the parent and its running items', async () => {
    maxOpen = 0;
    const slowHits = () => [...hits.entries()].filter(([u]) => u.startsWith('/slower/')).reduce((a, [, n]) => a + n, 0);
    const first = await Engine.create({ nc, log });
    const d = def({ id: 'mcrash', steps: [map('m', '{% [1,2,3,4,5,6,7,8,9,10] %}', [{ id: 'call', type: 'http', request: { url: `${base}/slower/{{item}}` } }], { maxConcurrency: 2 })] });
    const runner = await first.start({ definition: d });
    await expect.poll(slowHits, { timeout: 10_000 }).toBeGreaterThanOrEqual(3);
    await first.close(); // the crash: nothing more is recorded, requests in flight are aborted
    const second = await Engine.create({ nc, log });
    try {
      const outcome = await (await second.resume(runner.executionId)).done;
      expect(outcome.status).toBe('COMPLETED');
      expect((plainContext(outcome.snapshot.context).outputs.m as any[]).map((o) => o.body.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(maxOpen).toBe(2);
    } finally {
      await second.close();
    }
  }, 30_000);

  it('cancelling the parent cancels every running item (their requests aborted), and starts no other', async () => {
    const closedBefore = hangsClosed;
    const d = def({ id: 'mcancel', steps: [map('m', '{% [1,2,3,4,5] %}', [{ id: 'call', type: 'http', request: { url: `${base}/hang/{{item}}` } }], { maxConcurrency: 3 })] });
    const runner = await engine.start({ definition: d });
    await expect.poll(() => [1, 2, 3].every((i) => hits.get(`/hang/${i}`) === 1), { timeout: 10_000 }).toBe(true);
    await engine.cancel(runner.executionId, 'stop');
    expect((await runner.done).status).toBe('CANCELLED');
    const children = rec(await log.read(runner.executionId), 'StepStarted', 'm').flatMap((r) => (r.launch ?? []).map((l: { child: string }) => l.child));
    expect(children).toHaveLength(3);
    for (const c of children) await expect.poll(async () => (await log.last(c))?.record.type, { timeout: 10_000 }).toBe('ExecutionCancelled');
    await expect.poll(() => hangsClosed - closedBefore, { timeout: 10_000 }).toBe(3);
    expect(hits.get('/hang/4')).toBeUndefined();
  });

  it('resume re-runs only the failed items', async () => {
    broken.clear();
    broken.add('5');
    broken.add('13');
    const items = Array.from({ length: 20 }, (_, i) => i);
    const d = { id: 'mres', steps: [map('m', '{{input.items}}', [{ id: 'call', type: 'http', request: { url: `${base}/flaky/{{item}}` } }], { maxConcurrency: 20 }), t('after', 'done')] };
    const first = await run(d, { items });
    expect(first.outcome.status).toBe('FAILED');
    expect(summarize(await loadExecution(log, first.id)).steps.m.items).toEqual({ count: 20, settled: 20, running: 0, failed: 2 });
    for (const i of items) expect(hits.get(`/flaky/${i}`), `item ${i}`).toBe(1);
    broken.clear();
    const runner = await engine.resume(first.id);
    const outcome = await runner.done;
    expect(outcome.status).toBe('COMPLETED');
    for (const i of items) expect(hits.get(`/flaky/${i}`), `item ${i}`).toBe(i === 5 || i === 13 ? 2 : 1);
    expect((plainContext(outcome.snapshot.context).outputs.m as any[]).map((o) => o.body.ok)).toEqual(items.map(String));
    const report = await replayWithChildren(first.id, (x) => log.read(x));
    expect(report.ok, JSON.stringify(report.executions.filter((e) => !e.ok).map((e) => e.events.filter((x) => !x.ok)))).toBe(true);
  });

  it('on workers: items start and report by commands, and a worker that dies mid-map loses nothing and breaks no bound', async () => {
    maxOpen = 0;
    const slowHits = () => [...hits.entries()].filter(([u]) => u.startsWith('/slower/w')).reduce((a, [, n]) => a + n, 0);
    const workers = await Promise.all(['a', 'b'].map(async (name) => {
      const wnc = await connectNats(nats.url, `worker-${name}`);
      const bus = await CommandBus.open(wnc, { consumer: { ackWaitMs: 1500 } });
      const engine = await Engine.create({ nc: wnc, log: await EventLog.open(wnc), bus, owner: `worker-${name}` });
      const worker = new Worker({ engine, bus, logger: pino({ level: 'silent' }), ackWaitMs: 1500 });
      await worker.start();
      return { wnc, bus, engine, worker };
    }));
    try {
      const executionId = `mworkers-${process.pid}`;
      const d = { id: 'mworkers', steps: [map('m', '{% [1,2,3,4,5,6,7,8,9,10,11,12] %}', [{ id: 'call', type: 'http', request: { url: `${base}/slower/w{{item}}` } }], { maxConcurrency: 3 })] };
      await workers[0].bus.publish('start', { executionId, definition: d }, executionId);
      await expect.poll(slowHits, { timeout: 10_000 }).toBeGreaterThanOrEqual(4);
      await workers[0].wnc.close(); // worker a dies: what it held is delivered again to b
      await expect.poll(async () => (await log.last(executionId))?.record.type, { timeout: 30_000, interval: 200 }).toBe('ExecutionCompleted');
      const { record } = (await log.last(executionId))!;
      expect(((record as { output: any }).output as any[]).map((o) => o.body.n)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      expect(maxOpen).toBeLessThanOrEqual(3);
      const report = await replayWithChildren(executionId, (x) => log.read(x));
      expect(report.ok, JSON.stringify(report.children.filter((c) => !c.ok))).toBe(true);
    } finally {
      for (const w of workers) {
        await w.worker.stop().catch(() => undefined);
        await w.wnc.close().catch(() => undefined);
      }
    }
  }, 60_000);
});
