/**
 * The snapshot store on a real nats-server: the nearest snapshot at or before
 * a sequence, among this execution's only (not those of an execution whose id
 * shares a prefix), none when there is none, deleted ones skipped; and the
 * lookup leaves no consumer behind on the bucket's stream. Snapshots a runner
 * takes are listed under `<id>.seqs`, and a resume loaded from them has the
 * state a fold of the whole history gives, at every checkpoint.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { describe, expect, it } from 'vitest';
import { SNAPSHOT_EVERY, SnapshotStore } from '../../src/log/snapshots.js';
import { listCheckpoints, loadExecution, loadForResume } from '../../src/log/views.js';
import { Engine } from '../../src/worker/engine.js';
import { defaultExecutors } from '../../src/steps/index.js';
import { StepError } from '../../src/errors.js';
import { plainContext } from '../support/context.js';
import { SNAPSHOTS_BUCKET } from '../../src/nats/names.js';
import { EventLog } from '../../src/log/eventLog.js';
import { consumersCreatedDuring } from '../support/consumers.js';
import { def, useEngine } from '../support/engine.js';
import { useNatsServer } from '../support/nats.js';

const nats = useNatsServer();
const fx = useEngine(nats);

describe('SnapshotStore.nearest', () => {
  it('finds the newest snapshot at or before a sequence, of this execution only, and cleans up after itself', async () => {
    const store = await SnapshotStore.open(fx.nc);
    const engine = await fx.engine();
    const runner = await engine.start({ executionId: 'snap-1', definition: def({ id: 'snap', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'gate', type: 'signal' }] }) });
    await runner.settled();
    const [started] = await fx.log.read('snap-1');
    const at = (executionId: string, seq: number) => store.save({ seq, record: { ...started.record, executionId } }, runner.snapshot, seq);
    for (const seq of [500, 1000, 1500]) await at('snap-1', seq);
    await at('snap-10', 1200); // shares the prefix "snap-1"

    expect(await store.nearest('snap-1', 499)).toBeUndefined();
    expect((await store.nearest('snap-1', 500))?.stored.seq).toBe(500);
    expect((await store.nearest('snap-1', 1499))?.stored.seq).toBe(1000);
    expect((await store.nearest('snap-1', 10_000))?.stored.seq).toBe(1500);
    expect((await store.nearest('snap-10', 10_000))?.stored.seq).toBe(1200);
    expect(await store.nearest('nobody', 10_000)).toBeUndefined();
    const found = await store.nearest('snap-1', 1000);
    expect(found?.snapshot.context.executionId).toBe('snap-1');
    expect(found?.snapshot.value).toEqual(runner.snapshot.value);
    await (await new Kvm(fx.nc).open(SNAPSHOTS_BUCKET)).delete('snap-1.1500');
    expect((await store.nearest('snap-1', 10_000))?.stored.seq).toBe(1000);

    const jsm = await jetstreamManager(fx.nc);
    expect((await jsm.streams.info(`KV_${SNAPSHOTS_BUCKET}`)).state.consumer_count).toBe(0);
  });

  it('finds snapshots kept before they were listed (a key listing)', async () => {
    const store = await SnapshotStore.open(fx.nc);
    const engine = await fx.engine();
    const runner = await engine.start({ executionId: 'legacy-1', definition: def({ id: 'legacy', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'gate', type: 'signal' }] }) });
    await runner.settled();
    const [started] = await fx.log.read('legacy-1');
    const kv = await new Kvm(fx.nc).open(SNAPSHOTS_BUCKET);
    const value = { seq: 600, record: started.record, value: runner.snapshot.value, context: runner.snapshot.context, count: 600 };
    await kv.put('legacy-1.600', JSON.stringify(value)); // as a version without the list wrote it
    expect((await store.nearest('legacy-1', 700))?.stored.seq).toBe(600);
    expect(await store.nearest('legacy-1', 599)).toBeUndefined();
  });
});

describe('a resume loaded from snapshots', () => {
  it('has, at every checkpoint, the state a fold of the whole history has', async () => {
    const snapshots = await SnapshotStore.open(fx.nc);
    // Each step fails until its 20th attempt (about 40 records a step), the last one for good.
    const executors = defaultExecutors({
      fail: async ({ step, attempt }) => {
        if (step.retryable && attempt >= (step.retry?.maxAttempts ?? 1)) return { output: { step: step.id, attempt } };
        throw new StepError('FLAKY', step.message, { retryable: step.retryable });
      },
    });
    const engine = await Engine.create({ nc: fx.nc, log: fx.log, snapshots, executors });
    try {
      const steps = Array.from({ length: 8 }, (_, i) => ({ id: `s${i}`, type: 'fail', message: 'not yet', retryable: true, retry: { maxAttempts: 20, initialDelayMs: 0 } }));
      const runner = await engine.start({ executionId: 'snap-fold', definition: def({ id: 'snap-fold', steps: [...steps, { id: 'end', type: 'fail', message: 'stops here' }] }) });
      expect((await runner.done).status).toBe('FAILED');
      const full = await loadExecution(fx.log, 'snap-fold');
      const seqs = (await (await new Kvm(fx.nc).open(SNAPSHOTS_BUCKET)).get('snap-fold.seqs'))?.json<number[]>() ?? [];
      // A snapshot at the first checkpoint SNAPSHOT_EVERY records or more after the last one.
      expect(seqs.length).toBeGreaterThanOrEqual(Math.floor(full.records.length / (2 * SNAPSHOT_EVERY)));
      const checkpointSeqs = new Set(listCheckpoints(full.records).map((c) => c.seq));
      expect(seqs.every((seq) => checkpointSeqs.has(seq))).toBe(true);

      const same = (a: typeof full.fold.snapshot, b: typeof full.fold.snapshot) => {
        expect(a.value).toEqual(b.value);
        expect(plainContext(a.context)).toEqual(plainContext(b.context));
      };
      for (const cp of listCheckpoints(full.records)) {
        const loaded = await loadForResume(fx.log, snapshots, 'snap-fold', cp.seq);
        // From a snapshot at or before it, not whole (before the first snapshot: whole).
        if (cp.seq >= seqs[0]) expect(loaded.records.length).toBeLessThan(full.records.length);
        expect(loaded.recordCount).toBe(full.records.length);
        same(loaded.fold.snapshot, full.fold.snapshot);
        same(loaded.fold.checkpoints.get(cp.seq)!, full.fold.checkpoints.get(cp.seq)!);
      }
      // And the resumed run goes on from there as from a whole fold.
      const resumed = await engine.resume('snap-fold', { checkpointId: `cp-${seqs[0]}` });
      expect((await resumed.done).status).toBe('FAILED');
      const after = await loadExecution(fx.log, 'snap-fold');
      expect(after.fold.mismatches).toEqual([]);
    } finally {
      await engine.close();
    }
  });
});

describe('loadForResume and the snapshot keys', () => {
  it('lists none for a history too short to have a snapshot, and lists those of a long one kept before they were listed', async () => {
    const snapshots = await SnapshotStore.open(fx.nc);
    // Where each history starts, as the execution index tells the service's log.
    const log = await EventLog.open(fx.nc, { startOf: async (id) => (await fx.log.first(id))?.seq });
    const executors = defaultExecutors({
      fail: async ({ step, attempt }) => {
        if (step.retryable && attempt >= (step.retry?.maxAttempts ?? 1)) return { output: { attempt } };
        throw new StepError('FLAKY', step.message, { retryable: step.retryable });
      },
    });
    const engine = await Engine.create({ nc: fx.nc, log: fx.log, snapshots, executors });
    try {
      const shortDef = def({ id: 'short', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'end', type: 'fail', message: 'no' }] });
      const short = await engine.start({ executionId: 'short-history', definition: shortDef });
      expect((await short.done).status).toBe('FAILED');
      let loaded!: Awaited<ReturnType<typeof loadForResume>>;
      expect(await consumersCreatedDuring(nats.url, async () => (loaded = await loadForResume(log, snapshots, 'short-history')), `KV_${SNAPSHOTS_BUCKET}`)).toBe(0);
      expect(loaded.records.map((r) => r.record.type).at(-1)).toBe('ExecutionFailed');

      // The index does not say where it starts yet (its first status write is coalesced with the
      // next): the log that wrote the history knows, and lists nothing either.
      const unindexed = await EventLog.open(fx.nc, { startOf: async () => undefined });
      const writer = await Engine.create({ nc: fx.nc, log: unindexed, snapshots, executors });
      try {
        const r = await writer.start({ executionId: 'short-unindexed', definition: shortDef });
        expect((await r.done).status).toBe('FAILED');
        expect(await consumersCreatedDuring(nats.url, async () => (loaded = await loadForResume(unindexed, snapshots, 'short-unindexed')), `KV_${SNAPSHOTS_BUCKET}`)).toBe(0);
        expect(loaded.records.map((x) => x.record.type)).toEqual(['ExecutionStarted', 'StepStarted', 'StepCompleted', 'StepStarted', 'StepFailed', 'ExecutionFailed']);
      } finally {
        await writer.close();
      }

      // A long history whose snapshots a version without `<id>.seqs` wrote: found by a listing.
      const steps = Array.from({ length: 4 }, (_, i) => ({ id: `s${i}`, type: 'fail', message: 'not yet', retryable: true, retry: { maxAttempts: 20, initialDelayMs: 0 } }));
      const long = await engine.start({ executionId: 'long-history', definition: def({ id: 'long', steps: [...steps, { id: 'end', type: 'fail', message: 'stops here' }] }) });
      expect((await long.done).status).toBe('FAILED');
      const kv = await new Kvm(fx.nc).open(SNAPSHOTS_BUCKET);
      expect((await kv.get('long-history.seqs'))?.json<number[]>().length).toBeGreaterThan(0);
      await kv.delete('long-history.seqs');
      const full = await loadExecution(fx.log, 'long-history');
      expect(await consumersCreatedDuring(nats.url, async () => (loaded = await loadForResume(log, snapshots, 'long-history')), `KV_${SNAPSHOTS_BUCKET}`)).toBe(1);
      expect(loaded.records.length).toBeLessThan(full.records.length); // from a snapshot, not whole
      expect(loaded.fold.snapshot.value).toEqual(full.fold.snapshot.value);
    } finally {
      await engine.close();
    }
  });
});
