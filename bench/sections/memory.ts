/**
 * Memory: executions waiting on signals in one worker process. A waiting
 * execution is passivated — its actor is dropped and rebuilt from the log
 * when its signal arrives — so it should cost almost nothing in memory.
 * Measured as the process's RSS with 10,000 waiting (and, for contrast, heap
 * growth when the same actors are kept hosted).
 *
 * Then the same for waitForEvent, as users run it: 1,000 executions in a
 * `smartspec worker` child process waiting on one subject (each for the event
 * that names it), the worker's RSS while they wait (target < 100 MiB), and
 * how long until all have completed once their events are published. The RSS
 * that counts is read after full collections (a bench-only preload runs them
 * on a signal), as low as V8 shrinks the heap: what a worker left alone comes
 * down to within half a minute; the raw reading just after the burst is shown
 * beside it.
 */
import { randomUUID } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { CommandBus } from '../../src/bus/commands.js';
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { EXECUTION_SUBJECTS } from '../../src/nats/names.js';
import { loadEventsConfig } from '../../src/triggers/config.js';
import { ensureEventsStream } from '../../src/triggers/triggerConsumer.js';
import { Engine } from '../../src/worker/engine.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { closedLoop } from '../lib/load.js';
import { defineSection, type BenchContext } from '../lib/section.js';
import { EndWatcher, startWorker, within } from '../lib/worker.js';

const WAITING = validateDefinition({
  id: 'approval',
  steps: [
    { id: 'draft', type: 'transform', value: { doc: '{{input.n}}' } },
    { id: 'approve', type: 'signal' },
    { id: 'publish', type: 'transform', value: { approved: '{{steps.approve.output}}' } },
  ],
});

/** The waitForEvent workload: every execution waits on one subject for the event with its number. */
const EVENT_WAITERS = 1000;
const EVENT_SUBJECT = 'events.bench.payments';
const WAITING_FOR_EVENT = validateDefinition({
  id: 'await-payment',
  steps: [
    { id: 'order', type: 'transform', value: { n: '{{input.n}}' } },
    { id: 'paid', type: 'waitForEvent', subject: EVENT_SUBJECT, match: '{% event.n = input.n %}', timeoutMs: 600_000 },
    { id: 'receipt', type: 'transform', value: { amount: '{{steps.paid.output.data.amount}}' } },
  ],
});

const mib = (bytes: number) => bytes / 1024 / 1024;
const gc = () => (globalThis as { gc?: () => void }).gc?.();

export default defineSection({
  name: 'memory',
  title: 'Memory: executions waiting on a signal in one worker',
  figures: [
    { key: 'waiting.rssMiB', label: 'RSS with 10,000 waiting (passivated)', unit: 'MiB', better: 'lower' },
    { key: 'waiting.heapPerExecutionKiB', label: 'heap growth per waiting execution, passivated', unit: 'KiB', better: 'lower' },
    { key: 'hosted.heapPerExecutionKiB', label: 'heap growth per waiting execution, kept hosted', unit: 'KiB', better: 'lower' },
    { key: 'events.idleRssMiB', label: 'smartspec worker RSS, idle, after full GCs', unit: 'MiB', better: 'lower' },
    { key: 'events.waitingRssMiB', label: `smartspec worker RSS, ${EVENT_WAITERS.toLocaleString('en')} waitForEvent on one subject, after full GCs (target < 100)`, unit: 'MiB', better: 'lower' },
    { key: 'events.waitingRawRssMiB', label: '  the same 1 s after they began waiting, garbage included', unit: 'MiB', better: 'lower' },
    { key: 'events.completeSec', label: `${EVENT_WAITERS.toLocaleString('en')} events published → all ${EVENT_WAITERS.toLocaleString('en')} completed`, unit: 's', better: 'lower' },
  ],
  async setup(ctx) {
    const count = ctx.count(10_000);
    const nc = await connectNats(ctx.natsUrl, 'bench-memory');
    const log = await EventLog.open(nc);
    const bus = await CommandBus.open(nc);
    await ensureEventsStream(nc, loadEventsConfig({})); // as the worker makes it: SMARTSPEC_EVENTS over events.>
    const ends = new EndWatcher(nc);
    let batch = 0;
    const fill = async (engine: Engine, passivate: boolean) => {
      const tag = `${process.pid}-${batch++}`;
      gc();
      const heapBefore = process.memoryUsage().heapUsed;
      await closedLoop(count, 64, async (i) => {
        const runner = await engine.start({ definition: WAITING, input: { n: i }, executionId: `mem-${tag}-${i}` });
        const { status } = await runner.settled();
        if (status !== 'WAITING') throw new Error(`expected WAITING, got ${status}`);
        if (passivate) engine.passivate(runner, 0); // what the worker does
      });
      gc();
      const m = process.memoryUsage();
      return { rss: m.rss, heapPerExecution: (m.heapUsed - heapBefore) / count };
    };
    return {
      params: { waitingExecutions: count, waitingForEvent: EVENT_WAITERS, exposeGc: typeof (globalThis as { gc?: unknown }).gc === 'function' },
      async measure() {
        const passive = await Engine.create({ nc, log });
        const p = await fill(passive, true);
        await passive.close();
        const hosted = await Engine.create({ nc, log });
        const h = await fill(hosted, false);
        await hosted.close();
        return {
          'waiting.rssMiB': mib(p.rss),
          'waiting.heapPerExecutionKiB': p.heapPerExecution / 1024,
          'hosted.heapPerExecutionKiB': h.heapPerExecution / 1024,
          ...(await waitForEvents(ctx, nc, bus, ends, `${process.pid}-${batch++}`)),
        };
      },
      async close() {
        ends.close();
        await nc.close();
      },
    };
  },
});

/**
 * 1,000 executions waiting for an event in a worker child process (it runs only while this
 * measures: it would take other sections' commands): its RSS idle and while they wait, and how
 * long until all complete once their events are published.
 */
async function waitForEvents(ctx: BenchContext, nc: NatsConnection, bus: CommandBus, ends: EndWatcher, tag: string): Promise<Record<string, number>> {
  const worker = startWorker(ctx);
  const started = new Set<string>();
  const waiting = nc.subscribe(EXECUTION_SUBJECTS, {
    callback: (_err, msg) => {
      const r = msg.json<{ type: string; stepId?: string; executionId: string }>();
      if (r.type === 'StepStarted' && r.stepId === 'paid' && r.executionId.startsWith(`evw-${tag}-`)) started.add(r.executionId);
    },
  });
  try {
    await within(worker.ready, 90_000, 'the worker consuming commands');
    // Idle: once the worker has run an execution (it is up, its consumers made).
    const probe = `evw-probe-${tag}-${randomUUID().slice(0, 8)}`;
    const probed = ends.expect(probe);
    await bus.publish('start', { executionId: probe, definition: validateDefinition({ id: 'probe', steps: [{ id: 'a', type: 'transform', value: 1 }] }), input: {} }, `start:${probe}`);
    await within(probed, 90_000, 'the worker running its first execution');
    const idle = await worker.retainedRssMiB();

    const ids = Array.from({ length: EVENT_WAITERS }, (_, n) => `evw-${tag}-${n}`);
    const done = ids.map((id) => ends.expect(id));
    await closedLoop(ids.length, 64, (n) => bus.publish('start', { executionId: ids[n], definition: WAITING_FOR_EVENT, input: { n } }, `start:${ids[n]}`).then(() => undefined));
    const deadline = Date.now() + 120_000;
    while (started.size < ids.length) {
      if (Date.now() > deadline) throw new Error(`only ${started.size} of ${ids.length} executions began waiting within 120 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 1000)); // passivated once WAITING is recorded
    const waitingRaw = worker.rssMiB();
    const waitingRss = await worker.retainedRssMiB();

    const js = jetstream(nc);
    const t0 = performance.now();
    await closedLoop(ids.length, 64, (n) => js.publish(EVENT_SUBJECT, JSON.stringify({ n, amount: n * 10 })).then(() => undefined));
    const types = await within(Promise.all(done), 300_000, `${ids.length} executions completing on their events`);
    const completeSec = (performance.now() - t0) / 1000;
    const failed = types.filter((t) => t !== 'ExecutionCompleted').length;
    if (failed) throw new Error(`${failed} of ${ids.length} waiting executions did not complete`);
    return { 'events.idleRssMiB': idle, 'events.waitingRssMiB': waitingRss, 'events.waitingRawRssMiB': waitingRaw, 'events.completeSec': completeSec };
  } finally {
    waiting.unsubscribe();
    await worker.stop();
  }
}
