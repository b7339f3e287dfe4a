/**
 * The execution index's in-memory listing against a real nats-server: it
 * follows writes from other processes, shows its own writes at once, and
 * catches up when its KV watch is cut off server-side (as a fail-over does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { ExecutionIndex, type IndexEntry } from '../../src/registry/executionIndex.js';
import { EXECUTION_INDEX_BUCKET } from '../../src/nats/names.js';
import { EventLog } from '../../src/log/eventLog.js';
import { Engine } from '../../src/worker/engine.js';
import { SnapshotStore } from '../../src/log/snapshots.js';
import { loadForResume } from '../../src/log/views.js';
import { statusOf } from '../../machines/index.js';
import { def } from '../support/engine.js';
import { useNatsServer } from '../support/nats.js';
import { until } from '../support/processes.js';
import pino from 'pino';
import { CommandBus } from '../../src/bus/commands.js';
import { Worker } from '../../src/worker/worker.js';

const nats = useNatsServer();
let reader: NatsConnection;
let writer: NatsConnection;

const entry = (executionId: string, status: IndexEntry['status'] = 'RUNNING'): IndexEntry => {
  const now = new Date().toISOString();
  return { executionId, workflowId: 'wf', status, createdAt: now, updatedAt: now };
};

beforeAll(async () => {
  reader = await connect({ servers: nats.url });
  writer = await connect({ servers: nats.url });
});
afterAll(async () => {
  await reader?.close();
  await writer?.close();
});

describe('ExecutionIndex', () => {
  it('lists what another process writes, its own writes at once, and keeps up after its watch consumer is deleted', async () => {
    const other = await ExecutionIndex.open(writer);
    await other.put(entry('before-watch', 'COMPLETED'));

    const index = await ExecutionIndex.open(reader, 1, 200);
    await index.watch();
    try {
      expect(index.list().map((e) => e.executionId)).toEqual(['before-watch']);

      // Own write: listed as soon as put resolves, no round trip through the watch.
      await index.put(entry('own'));
      expect(index.list().some((e) => e.executionId === 'own')).toBe(true);

      // Another process's write arrives through the watch.
      await other.put(entry('other', 'COMPLETED'));
      await until('the watch to deliver', async () => (await index.get('other'))?.status === 'COMPLETED' && index.list().length === 3, 5000, 50);

      // Cut the watch off the way a lost node does: its consumer is gone from the server.
      const jsm = await jetstreamManager(writer);
      const stream = `KV_${EXECUTION_INDEX_BUCKET}`;
      const consumers = await jsm.consumers.list(stream).next();
      expect(consumers.length).toBeGreaterThan(0);
      for (const c of consumers) await jsm.consumers.delete(stream, c.name);

      await other.put(entry('own', 'COMPLETED'));
      await other.put(entry('after-cut', 'FAILED'));
      await until('the listing to catch up after the cut', async () => {
        const byId = new Map(index.list().map((e) => [e.executionId, e.status]));
        return byId.get('own') === 'COMPLETED' && byId.get('after-cut') === 'FAILED';
      }, 10_000, 100);
    } finally {
      index.close();
    }
  }, 20_000);

  it("counts each tenant's PENDING and RUNNING executions as entries come, change, go and arrive from other processes", async () => {
    const other = await ExecutionIndex.open(writer);
    const index = await ExecutionIndex.open(reader, 1, 200);
    await index.watch();
    try {
      const of = (id: string, status: IndexEntry['status'], tenant?: string) => ({ ...entry(id, status), ...(tenant ? { tenant } : {}) });
      const counts = () => ({ acme: index.activeCount('acme'), beta: index.activeCount('beta'), default: index.activeCount('default') });
      const base = counts();
      await index.put(of('cap-a1', 'PENDING', 'acme'));
      await index.put(of('cap-a2', 'RUNNING', 'acme'));
      await index.put(of('cap-b1', 'WAITING', 'beta')); // waiting is not running
      await index.put(of('cap-d1', 'PENDING')); // no tenant: the default tenant's
      expect(counts()).toEqual({ acme: base.acme + 2, beta: base.beta, default: base.default + 1 });
      await index.put(of('cap-a2', 'COMPLETED', 'acme'));
      await index.remove('cap-d1');
      await other.put(of('cap-b2', 'RUNNING', 'beta'));
      await other.put(of('cap-a1', 'FAILED', 'acme'));
      await until('the watch to deliver', async () => index.activeCount('beta') === base.beta + 1 && index.activeCount('acme') === base.acme, 5000, 50);
      expect(counts()).toEqual({ ...base, beta: base.beta + 1 });
    } finally {
      index.close();
    }
  });

  it("writes one execution's updates in order, newest last, skipping those overtaken while waiting, and keeps createdAt", async () => {
    const index = await ExecutionIndex.open(writer);
    const first = entry('ordered', 'PENDING');
    await index.put(first);
    const firstRevision = (await new Kvm(writer).open(EXECUTION_INDEX_BUCKET).then((kv) => kv.get('ordered')))!.revision;
    const statuses = ['RUNNING', 'WAITING', 'RUNNING', 'WAITING', 'RUNNING', 'COMPLETED'] as const;
    const at = (i: number) => new Date(Date.parse(first.createdAt) + 1000 * (i + 1)).toISOString();
    await Promise.all(statuses.map((status, i) => index.update({ executionId: 'ordered', workflowId: 'wf', status, updatedAt: at(i) })));

    const kv = await new Kvm(writer).open(EXECUTION_INDEX_BUCKET);
    const stored = await kv.get('ordered');
    expect(stored?.json()).toEqual({ ...first, status: 'COMPLETED', updatedAt: at(statuses.length - 1) });
    // The first update, not an end, is held back for the next; the end that comes meanwhile goes out at once, alone.
    expect(stored!.revision - firstRevision).toBe(1);
  });

  it('holds a status that is not an end back only briefly, and not at all for whoever waits for it', async () => {
    const index = await ExecutionIndex.open(writer);
    const kv = await new Kvm(writer).open(EXECUTION_INDEX_BUCKET);
    for (const id of ['held', 'awaited']) await index.put(entry(id, 'PENDING'));
    const running = (id: string) => index.update({ executionId: id, workflowId: 'wf', status: 'RUNNING', updatedAt: new Date().toISOString() });
    void running('held');
    expect((await kv.get('held'))?.json<IndexEntry>().status).toBe('PENDING');
    await until('the held status to be written', async () => (await kv.get('held'))?.json<IndexEntry>().status === 'RUNNING', 2000, 20);
    void running('awaited');
    const t0 = Date.now();
    await index.settled('awaited');
    expect(Date.now() - t0).toBeLessThan(150);
    expect((await kv.get('awaited'))?.json<IndexEntry>().status).toBe('RUNNING');
  });

  it('the engine records where each history starts, keeps it through later updates, and reads start there', async () => {
    const index = await ExecutionIndex.open(writer);
    const plain = await EventLog.open(writer);
    const asked: string[] = [];
    const hinted = await EventLog.open(writer, { startOf: async (id) => { asked.push(id); return (await index.get(id))?.firstSeq; } });
    const engine = await Engine.create({ nc: writer, log: plain, index });
    try {
      // Another execution's records first, so the history does not start at sequence 1.
      await (await engine.start({ definition: def({ id: 'other', steps: [{ id: 'a', type: 'transform', value: 1 }] }), executionId: 'idx-other' })).done;
      const runner = await engine.start({ definition: def({ id: 'wf', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'transform', value: 2 }] }), executionId: 'idx-first' });
      await runner.done;
      const history = await plain.read('idx-first');
      await until('the index to say COMPLETED', async () => (await index.get('idx-first'))?.status === 'COMPLETED', 5000, 50);
      const entry = await new Kvm(writer).open(EXECUTION_INDEX_BUCKET).then((kv) => kv.get('idx-first'));
      expect(entry?.json()).toMatchObject({ status: 'COMPLETED', firstSeq: history[0].seq });
      expect(history[0].seq).toBeGreaterThan(1);

      expect(await hinted.read('idx-first')).toEqual(history);
      expect(asked).toEqual(['idx-first']);
      // A read that asks for a later part does not need the start.
      expect(await hinted.read('idx-first', history[2].seq)).toEqual(history.slice(2));
      expect(asked).toHaveLength(1);
    } finally {
      await engine.close();
    }
  });

  it('a host that died between its last append and its index write: the redelivered command brings the index up to the log', async () => {
    const index = await ExecutionIndex.open(writer);
    const log = await EventLog.open(writer);
    const engine = await Engine.create({ nc: writer, log, index });
    const bus = await CommandBus.open(writer, { consumer: { ackWaitMs: 2000, maxDeliver: 5 } });
    const worker = new Worker({ engine, bus, logger: pino({ level: 'silent' }), ackWaitMs: 2000 });
    try {
      const definition = def({ id: 'wf', steps: [{ id: 'a', type: 'transform', value: 1 }] });
      await (await engine.start({ definition, executionId: 'idx-stale' })).done;
      await until('the index to say COMPLETED', async () => (await index.get('idx-stale'))?.status === 'COMPLETED', 5000, 50);
      // As the dead host left it: the log ends COMPLETED, the index still says RUNNING.
      const stale = (await index.get('idx-stale'))!;
      await index.put({ ...stale, status: 'RUNNING', lastSeq: undefined });
      await worker.start();
      await bus.publish('start', { executionId: 'idx-stale', definition, input: {} }, 'start:idx-stale-redelivered');
      await until('the index to say COMPLETED again', async () => (await index.get('idx-stale'))?.status === 'COMPLETED', 10_000, 50);
      expect(await index.get('idx-stale')).toMatchObject({ status: 'COMPLETED', firstSeq: stale.firstSeq, createdAt: stale.createdAt });
    } finally {
      await worker.stop();
      await engine.close();
    }
  });

  it('a resume of a short history loads it whole from its start hint, and a wrong hint still gives the whole history', async () => {
    const index = await ExecutionIndex.open(writer);
    const plain = await EventLog.open(writer);
    const snapshots = await SnapshotStore.open(writer);
    const engine = await Engine.create({ nc: writer, log: plain, index });
    try {
      const runner = await engine.start({ definition: def({ id: 'wf', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'fail', message: 'no' }] }), executionId: 'idx-short' });
      await runner.done;
      const history = await plain.read('idx-short');
      await until('the index to know where it starts', async () => (await index.get('idx-short'))?.firstSeq === history[0].seq, 5000, 50);
      for (const hint of [history[0].seq, history[2].seq]) {
        const hinted = await EventLog.open(writer, { startOf: async () => hint });
        const loaded = await loadForResume(hinted, snapshots, 'idx-short', history[2].seq);
        expect(loaded.records).toEqual(history);
        expect(loaded.recordCount).toBe(history.length);
        expect(statusOf(loaded.fold.snapshot)).toBe('FAILED');
        expect(loaded.fold.checkpoints.has(history[2].seq)).toBe(true);
      }
    } finally {
      await engine.close();
    }
  });

  it('a start hint that does not land on ExecutionStarted, or does not come, is not waited for or trusted: the whole history is read', async () => {
    const plain = await EventLog.open(writer);
    const engine = await Engine.create({ nc: writer, log: plain });
    try {
      await (await engine.start({ definition: def({ id: 'wf', steps: [{ id: 'a', type: 'transform', value: 1 }] }), executionId: 'idx-hint' })).done;
      const history = await plain.read('idx-hint');
      for (const wrong of [history[1].seq, history[history.length - 1].seq + 1000]) {
        const misled = await EventLog.open(writer, { startOf: async () => wrong });
        expect(await misled.read('idx-hint')).toEqual(history);
      }
      // An index that never answers (lost in a fail-over) does not hold the read up.
      const silent = await EventLog.open(writer, { startOf: () => new Promise<number>(() => undefined) });
      expect(await silent.read('idx-hint')).toEqual(history);
    } finally {
      await engine.close();
    }
  });
});
