/**
 * Every store that follows a KV bucket does it through KvMirror, against a
 * real nats-server: a watch cut off server-side (its consumer deleted, as a
 * lost node does) is replaced, so what is written afterwards still arrives;
 * and a bucket whose last changes were deletions since purged is not taken for
 * a stalled watch (which would replay the bucket over and over).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { KvMirror } from '../../src/nats/kvMirror.js';
import { TimerStore, type TimerChange } from '../../src/timers/timerStore.js';
import { WaitStore, type WaitChange } from '../../src/events/waitStore.js';
import { ScheduleStore, type ScheduleChange } from '../../src/schedules/scheduleStore.js';
import { WorkflowTriggers } from '../../src/triggers/workflowTriggers.js';
import { SCHEDULES_BUCKET, TIMERS_BUCKET, WAITS_BUCKET, WORKFLOWS_BUCKET } from '../../src/nats/names.js';
import { ensureEventsStream } from '../../src/triggers/triggerConsumer.js';
import { useNatsServer } from '../support/nats.js';
import { until } from '../support/processes.js';

const nats = useNatsServer();
const STALL_CHECK_MS = 200;
let nc: NatsConnection;
let writer: NatsConnection;

beforeAll(async () => {
  nc = await connect({ servers: nats.url });
  writer = await connect({ servers: nats.url });
});
afterAll(async () => {
  await nc?.close();
  await writer?.close();
});

/** Cut every watch of a bucket off the way a lost node does: its consumers are gone from the server. */
async function cutWatches(bucket: string): Promise<void> {
  const jsm = await jetstreamManager(writer);
  const consumers = await jsm.consumers.list(`KV_${bucket}`).next();
  expect(consumers.length).toBeGreaterThan(0);
  for (const c of consumers) await jsm.consumers.delete(`KV_${bucket}`, c.name);
}

const bucket = (name: string): Promise<KV> => new Kvm(writer).open(name);

describe('stores following a bucket, after their watch is cut off', () => {
  it('timers: a timer armed after the cut still arrives', async () => {
    const store = await TimerStore.open(nc);
    const seen = new Map<string, TimerChange['entry']>();
    const watch = store.watch(({ key, entry }) => seen.set(key, entry), STALL_CHECK_MS);
    try {
      const at = new Date(Date.now() + 60_000).toISOString();
      await store.arm({ executionId: 'e1', stepId: 's', attempt: 1, at });
      await until('the first timer', async () => seen.has('e1.s.1'), 5000, 20);
      await cutWatches(TIMERS_BUCKET);
      await store.arm({ executionId: 'e2', stepId: 's', attempt: 1, at });
      await until('the timer armed after the cut', async () => seen.get('e2.s.1')?.at === at, 10_000, 50);
    } finally {
      watch.stop();
    }
  }, 20_000);

  it('waits: ready once the current ones are in, and a wait armed after the cut still arrives', async () => {
    await ensureEventsStream(writer, { stream: 'EVENTS', subjects: ['orders.>'], maxAgeMs: 3_600_000 });
    const store = await WaitStore.open(nc, 'EVENTS');
    const wait = (executionId: string) => ({ executionId, stepId: 'w', attempt: 1, subject: 'orders.*', scope: {} });
    await store.arm(wait('before'));
    const seen = new Map<string, WaitChange['entry']>();
    let watch!: { stop(): void };
    await new Promise<void>((ready) => (watch = store.watch(({ key, entry }) => seen.set(key, entry), ready, STALL_CHECK_MS)));
    try {
      expect(seen.get('before.w.1')?.subject).toBe('orders.*');
      await cutWatches(WAITS_BUCKET);
      await (await bucket(WAITS_BUCKET)).put('after.w.1', JSON.stringify({ ...wait('after'), afterSeq: 0 }));
      await until('the wait armed after the cut', async () => seen.get('after.w.1')?.executionId === 'after', 10_000, 50);
    } finally {
      watch.stop();
    }
  }, 20_000);

  it('schedules: a schedule changed after the cut arrives changed', async () => {
    const store = await ScheduleStore.open(nc);
    const seen = new Map<string, ScheduleChange['schedule']>();
    const watch = store.watch(({ key, schedule }) => seen.set(key, schedule), STALL_CHECK_MS);
    try {
      const kv = await bucket(SCHEDULES_BUCKET);
      await kv.put('s.t.nightly', JSON.stringify({ id: 'nightly', paused: false }));
      await until('the schedule', async () => seen.get('s.t.nightly')?.paused === false, 5000, 20);
      await cutWatches(SCHEDULES_BUCKET);
      await kv.put('s.t.nightly', JSON.stringify({ id: 'nightly', paused: true }));
      await until('the change made after the cut', async () => seen.get('s.t.nightly')?.paused === true, 10_000, 50);
    } finally {
      watch.stop();
    }
  }, 20_000);

  it('triggers: a workflow registered after the cut is listened for', async () => {
    const triggers = await WorkflowTriggers.open(nc, 1, STALL_CHECK_MS);
    const stored = (id: string, subject: string) => JSON.stringify({ id, version: 1, createdAt: new Date().toISOString(), definition: { id, steps: [], triggers: [{ subject }] } });
    const kv = await bucket(WORKFLOWS_BUCKET);
    await kv.put('wf.first', stored('first', 'orders.created'));
    await triggers.start();
    try {
      expect(triggers.subjects()).toEqual(['orders.created']);
      await cutWatches(WORKFLOWS_BUCKET);
      await kv.put('wf.second', stored('second', 'orders.paid'));
      await until('the trigger registered after the cut', async () => triggers.matching('orders.paid').length === 1, 10_000, 50);
    } finally {
      triggers.stop();
    }
  }, 20_000);
});

describe('WorkflowTriggers.syncedTo', () => {
  it('has every workflow stored before the moment asked for, even while its watch lags', async () => {
    // Found in CI under load: a workflow registered just before its events were published was not
    // yet in a worker's mirror; the events matched nothing there and were acknowledged, lost.
    const triggers = await WorkflowTriggers.open(nc, 1, STALL_CHECK_MS);
    const stored = (id: string, subject: string) => JSON.stringify({ id, version: 1, createdAt: new Date().toISOString(), definition: { id, steps: [], triggers: [{ subject }] } });
    const kv = await bucket(WORKFLOWS_BUCKET);
    await triggers.start();
    try {
      await cutWatches(WORKFLOWS_BUCKET); // the watch delivers nothing until the stall check replaces it
      await kv.put('wf.late', stored('late', 'users.scored'));
      expect(triggers.matching('users.scored')).toHaveLength(0); // not yet seen: an event now would match nothing
      await triggers.syncedTo(Date.now());
      expect(triggers.matching('users.scored')).toHaveLength(1);
    } finally {
      triggers.stop();
    }
  }, 20_000);
});

describe('KvMirror', () => {
  it('does not take purged deletions for a stalled watch (no replay of the bucket over and over)', async () => {
    const kv = await new Kvm(writer).create('kvmirror_purged', { history: 1 });
    await kv.put('kept', '1');
    await kv.put('gone', '2');
    await kv.delete('gone');
    await (kv as KV & { purgeDeletes(olderMillis: number): Promise<unknown> }).purgeDeletes(-1000);
    const applied: string[] = [];
    const mirror = new KvMirror<number>(await new Kvm(nc).open('kvmirror_purged'), nc, { stallCheckMs: 100, retryMs: 50, apply: (key) => applied.push(key) });
    await mirror.start();
    try {
      await new Promise((r) => setTimeout(r, 1000));
      expect(applied).toEqual(['kept']); // a restarted watch would have replayed it again
      await kv.put('later', '3');
      await until('a later put', async () => applied.includes('later'), 5000, 20);
    } finally {
      mirror.close();
    }
  }, 20_000);
});
