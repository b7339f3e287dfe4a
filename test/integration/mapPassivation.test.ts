/**
 * A parent whose map only waits for its items is passivated, on a real
 * nats-server with a worker: while every running item waits for a signal the
 * worker hosts none of the parent; an item's end brings it back (by the
 * `child` command), it records the result, starts the next item within
 * maxConcurrency (its state says which items run), and lets go again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { NatsConnection } from '@nats-io/transport-node';
import { useNatsServer } from '../support/nats.js';
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { Engine } from '../../src/worker/engine.js';
import { CommandBus } from '../../src/bus/commands.js';
import { Worker } from '../../src/worker/worker.js';
import { TimerStore } from '../../src/timers/timerStore.js';
import { replayWithChildren } from '../../src/log/childReplay.js';

const nats = useNatsServer();
let nc: NatsConnection;
let log: EventLog;
let bus: CommandBus;
let engine: Engine;
let worker: Worker;

beforeAll(async () => {
  nc = await connectNats(nats.url, 'worker');
  log = await EventLog.open(nc);
  bus = await CommandBus.open(nc, { consumer: { ackWaitMs: 5000 } });
  const timers = await TimerStore.open(nc);
  engine = await Engine.create({ nc, log, bus, timers });
  worker = new Worker({ engine, bus, timers, logger: pino({ level: 'silent' }) });
  await worker.start();
});
afterAll(async () => {
  await worker?.stop();
  await nc?.close();
});

type Rec = Record<string, any>;
const records = async (id: string): Promise<Rec[]> => (await log.read(id)).map((r) => r.record as Rec);

/** The map's items running as its log says: started and not yet reported (index → child). */
async function running(id: string): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const r of await records(id)) {
    for (const l of r.launch ?? []) out.set(l.index, l.child);
    for (const x of [...(r.results ?? []), ...(r.failures ?? [])]) out.delete(x.index);
  }
  return out;
}

describe('a map waiting for its items', () => {
  it('is let go while its items wait for signals, and each item end brings it back within maxConcurrency', async () => {
    const executionId = `map-passive-${process.pid}`;
    const definition = {
      id: 'map-passive',
      steps: [{
        id: 'm', type: 'map', items: '{% [1,2,3,4] %}', maxConcurrency: 2,
        steps: [{ id: 'wait', type: 'signal', name: 'go' }, { id: 'out', type: 'transform', value: '{% item * 10 %}' }],
      }],
    };
    await bus.publish('start', { executionId, definition }, executionId);
    const passivated = async (n: number) => {
      await expect.poll(async () => (await running(executionId)).size === n && !engine.runners.has(executionId), { timeout: 10_000, interval: 25 }).toBe(true);
      // Its items wait passivated too: the worker hosts nothing of the map.
      await expect.poll(async () => [...(await running(executionId)).values()].filter((c) => engine.runners.has(c)).length, { timeout: 10_000, interval: 25 }).toBe(0);
      expect(engine.runners.size).toBe(0);
    };
    await passivated(2);
    let launched = 2;
    for (let done = 0; done < 4; done++) {
      const now = await running(executionId);
      expect(now.size).toBeLessThanOrEqual(2);
      const [index, child] = [...now.entries()].sort((a, b) => a[0] - b[0])[0];
      await bus.publish('signal', { executionId: child, name: 'go', payload: {} }, `go:${child}`);
      await expect.poll(async () => (await records(executionId)).some((r) => (r.results ?? []).some((x: Rec) => x.index === index)), { timeout: 10_000, interval: 25 }).toBe(true);
      if (launched < 4) launched++;
      if (done < 3) await passivated(launched - done - 1);
    }
    await expect.poll(async () => (await log.last(executionId))?.record.type, { timeout: 10_000, interval: 50 }).toBe('ExecutionCompleted');
    const all = await records(executionId);
    expect(all.at(-1)!.output).toEqual([10, 20, 30, 40]);
    // No record ever had more than maxConcurrency items running.
    const live = new Set<number>();
    for (const r of all) {
      for (const l of r.launch ?? []) live.add(l.index);
      for (const x of [...(r.results ?? []), ...(r.failures ?? [])]) live.delete(x.index);
      expect(live.size).toBeLessThanOrEqual(2);
    }
    const report = await replayWithChildren(executionId, (x) => log.read(x));
    expect(report.ok, JSON.stringify(report.children.filter((c) => !c.ok))).toBe(true);
  }, 60_000);

  it('a map after a sleep that ends in place still launches its items (4 executions, 2 items each)', async () => {
    // Found by trying it: the sleep's durable timer arrives after the sleep ended in place; that
    // command hosted the parent, and the map's launch was recorded but its children never started.
    const definition = {
      id: 'nap-then-map',
      steps: [
        { id: 'nap', type: 'sleep', durationMs: 10 },
        { id: 'each', type: 'map', items: '{{input.docs}}', steps: [{ id: 'rest', type: 'sleep', durationMs: 1 }, { id: 'one', type: 'transform', value: '{{item}}' }] },
      ],
    };
    const ids = [0, 1, 2, 3].map((n) => `nap-map-${process.pid}-${n}`);
    for (const executionId of ids) await bus.publish('start', { executionId, definition, input: { docs: ['x', 'y'] } }, executionId);
    for (const executionId of ids) {
      await expect.poll(async () => (await log.last(executionId))?.record.type, { timeout: 20_000, interval: 50 })
        .toBe('ExecutionCompleted');
      expect((await log.last(executionId))!.record).toMatchObject({ output: ['x', 'y'] });
    }
  }, 90_000);
});
