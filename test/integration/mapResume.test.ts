/**
 * `resume --from-step` naming a step inside a map's block, on a real
 * nats-server and a real HTTP server counting the requests of each step:
 * each item's own child execution is resumed from that step (its earlier
 * steps kept from its own log), an item whose child never got there runs
 * again from its start, the parent records the new results, and replay of
 * the parent and its children verifies.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { useNatsServer } from '../support/nats.js';
import { def } from '../support/engine.js';
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { Engine } from '../../src/worker/engine.js';
import { replayWithChildren } from '../../src/log/childReplay.js';
import { pino } from 'pino';
import { CommandBus } from '../../src/bus/commands.js';
import { Worker } from '../../src/worker/worker.js';
import { TimerStore } from '../../src/timers/timerStore.js';
import { WorkflowRegistry } from '../../src/registry/workflows.js';

const nats = useNatsServer();
let nc: NatsConnection;
let log: EventLog;
let engine: Engine;

/** /a/<item> and /b/<item>: counted; /a/<item> answers 500 for the items in `broken`; /b answers with how often it was asked. */
let server: ReturnType<typeof createServer>;
let base = '';
const hits = new Map<string, number>();
const broken = new Set<string>();
beforeAll(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? '';
    const n = (hits.get(url) ?? 0) + 1;
    hits.set(url, n);
    if (url.startsWith('/a/') && broken.has(url.slice(3).split('?')[0])) res.writeHead(500).end('down');
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ run: n }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  nc = await connectNats(nats.url, 'test');
  log = await EventLog.open(nc);
  engine = await Engine.create({ nc, log, registry: await WorkflowRegistry.open(nc) });
});
afterAll(async () => {
  await engine?.close();
  await nc?.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

type Rec = Record<string, any>;
const records = async (id: string): Promise<Rec[]> => (await log.read(id)).map((r) => r.record as Rec);

describe('resume from a step inside a map', () => {
  it('resumes each item’s child from that step, runs an item that never got there from its start, and records the new results', async () => {
    broken.add('3');
    const definition = def({
      id: 'map-from-step',
      steps: [
        {
          id: 'm', type: 'map', items: '{% [1,2,3,4] %}', maxConcurrency: 4,
          steps: [
            { id: 'a', type: 'http', request: { url: `${base}/a/{{item}}` } },
            { id: 'b', type: 'http', request: { url: `${base}/b/{{item}}?a={{steps.a.output.body.run}}` } },
          ],
        },
        { id: 'after', type: 'transform', value: '{% $count(steps.m.output) %}' },
      ],
    });
    const first = await engine.start({ definition });
    expect((await first.done).status).toBe('FAILED');
    const id = first.executionId;
    const launched = new Map<number, string>();
    for (const r of await records(id)) for (const l of r.launch ?? []) launched.set(l.index, l.child);
    expect(launched.size).toBe(4);

    broken.clear();
    const resumed = await engine.resume(id, { fromStep: 'b' });
    const outcome = await resumed.done;
    expect(outcome.status).toBe('COMPLETED');

    // `a` ran once in the items that had completed it, `b` again in each; item 3 ran from its start.
    for (const item of [1, 2, 4]) {
      expect(hits.get(`/a/${item}`), `a of item ${item}`).toBe(1);
      expect(hits.get(`/b/${item}?a=1`), `b of item ${item}`).toBe(2);
    }
    expect(hits.get('/a/3')).toBe(2);
    expect(hits.get('/b/3?a=2')).toBe(1);

    const all = await records(id);
    const resume = all.find((r) => r.type === 'ExecutionResumed')!;
    expect(resume).toMatchObject({ fromStep: 'b', items: { stepId: 'm', fromStep: 'b' } });
    // The same children ran again, each resumed in its own log: from `b`, or (item 3) from its start.
    const relaunched = all.slice(all.indexOf(resume)).flatMap((r) => r.launch ?? []);
    expect(new Map(relaunched.map((l: Rec) => [l.index, l.child]))).toEqual(launched);
    for (const [index, child] of launched) {
      const childRecords = await records(child);
      const again = childRecords.filter((r) => r.type === 'ExecutionResumed');
      expect(again, `child of item ${index}`).toHaveLength(1);
      expect(again[0].fromStep).toBe(index === 2 ? 'a' : 'b');
      expect(childRecords.filter((r) => r.type === 'StepStarted' && r.stepId === 'a')).toHaveLength(index === 2 ? 2 : 1);
      expect(childRecords.at(-1)!.type).toBe('ExecutionCompleted');
    }
    // The map's output is the new `b` of each item.
    const output = all.find((r) => r.type === 'StepCompleted' && r.stepId === 'm' && r.results === undefined)!.output as Rec[];
    expect(output.map((o) => o.body.run)).toEqual([2, 2, 1, 2]);
    expect(all.at(-1)).toMatchObject({ type: 'ExecutionCompleted', output: 4 });

    const report = await replayWithChildren(id, (x) => log.read(x));
    expect(report.ok, JSON.stringify({ children: report.children.filter((c) => !c.ok), executions: report.executions.filter((e) => !e.ok).map((e) => e.events.filter((x) => !x.ok)) })).toBe(true);
  });

  it('on a worker: the resume command resumes each item’s child by a command, and each resumed child reports again', async () => {
    const wnc = await connectNats(nats.url, 'worker');
    const bus = await CommandBus.open(wnc, { consumer: { ackWaitMs: 5000 } });
    const timers = await TimerStore.open(wnc);
    const workerEngine = await Engine.create({ nc: wnc, log: await EventLog.open(wnc), bus, timers });
    const worker = new Worker({ engine: workerEngine, bus, timers, logger: pino({ level: 'silent' }) });
    await worker.start();
    try {
      hits.clear();
      broken.add('7');
      const executionId = `map-from-step-worker-${process.pid}`;
      const definition = {
        id: 'map-from-step-worker',
        steps: [{
          id: 'm', type: 'map', items: '{% [5,6,7] %}', maxConcurrency: 2,
          steps: [{ id: 'a', type: 'http', request: { url: `${base}/a/{{item}}` } }, { id: 'b', type: 'http', request: { url: `${base}/b/{{item}}` } }],
        }],
      };
      await bus.publish('start', { executionId, definition }, executionId);
      await expect.poll(async () => (await log.last(executionId))?.record.type, { timeout: 20_000, interval: 50 }).toBe('ExecutionFailed');
      broken.clear();
      await bus.publish('resume', { executionId, fromStep: 'b' }, `resume:${executionId}`);
      await expect.poll(async () => (await log.last(executionId))?.record.type, { timeout: 20_000, interval: 50 }).toBe('ExecutionCompleted');
      expect([hits.get('/a/5'), hits.get('/a/6'), hits.get('/a/7')]).toEqual([1, 1, 2]);
      expect([hits.get('/b/5'), hits.get('/b/6'), hits.get('/b/7')]).toEqual([2, 2, 1]);
      const output = (await log.last(executionId))!.record as Rec;
      expect((output.output as Rec[]).map((o) => o.body.run)).toEqual([2, 2, 1]);
      const report = await replayWithChildren(executionId, (x) => log.read(x));
      expect(report.ok, JSON.stringify(report.children.filter((c) => !c.ok))).toBe(true);
    } finally {
      await worker.stop();
      await wnc.close();
    }
  }, 60_000);

  it('a step of a `workflow` step’s child: the child is resumed from it, and the parent runs on from that step with its new output', async () => {
    hits.clear();
    await (await WorkflowRegistry.open(nc)).register(def({
      id: 'two-calls',
      steps: [{ id: 'ca', type: 'http', request: { url: `${base}/a/wf` } }, { id: 'cb', type: 'http', request: { url: `${base}/b/wf` } }],
    }));
    broken.add('after');
    const first = await engine.start({
      definition: def({
        id: 'wf-from-step',
        steps: [{ id: 'w', type: 'workflow', workflowId: 'two-calls' }, { id: 'after', type: 'http', request: { url: `${base}/a/after?run={{steps.w.output.body.run}}` } }],
      }),
    });
    expect((await first.done).status).toBe('FAILED');
    const id = first.executionId;
    const child = (await records(id)).find((r) => r.type === 'StepStarted' && r.stepId === 'w')!.child as string;
    broken.clear();
    const outcome = await (await engine.resume(id, { fromStep: 'cb' })).done;
    expect(outcome.status).toBe('COMPLETED');
    expect([hits.get('/a/wf'), hits.get('/b/wf')]).toEqual([1, 2]);
    expect(hits.get('/a/after?run=2')).toBe(1);
    const all = await records(id);
    expect(all.find((r) => r.type === 'ExecutionResumed')).toMatchObject({ fromStep: 'w', items: { stepId: 'w', fromStep: 'cb', child: { child } } });
    expect(all.filter((r) => r.type === 'StepStarted' && r.stepId === 'w').map((r) => r.child)).toEqual([child, child]);
    const childRecords = await records(child);
    expect(childRecords.filter((r) => r.type === 'ExecutionResumed').map((r) => r.fromStep)).toEqual(['cb']);
    const report = await replayWithChildren(id, (x) => log.read(x));
    expect(report.ok, JSON.stringify(report.children.filter((c) => !c.ok))).toBe(true);
  });
});
