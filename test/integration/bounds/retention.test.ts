/**
 * Retention (issue 9): executions that ended longer ago than a duration are
 * purged — their history, index entry, snapshots and large payloads — and an
 * execution that has not ended (WAITING, RUNNING) is never purged, whatever
 * its age. The worker's loop (SMARTSPEC_RETENTION) runs the same pass.
 */
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../../support/nats.js';
import { def, useEngine } from '../../support/engine.js';
import { until } from '../../support/processes.js';
import { ExecutionIndex } from '../../../src/registry/executionIndex.js';
import { SnapshotStore } from '../../../src/log/snapshots.js';
import { Engine } from '../../../src/worker/engine.js';
import { defaultExecutors } from '../../../src/steps/index.js';
import { purgeEndedExecutions } from '../../../src/retention/purge.js';
import { startRetention } from '../../../src/retention/schedule.js';
import { PAYLOADS_BUCKET } from '../../../src/retention/objects.js';
import { SNAPSHOTS_BUCKET } from '../../../src/nats/names.js';

const nats = useNatsServer();
const fx = useEngine(nats);

const done = def({ id: 'done', steps: [{ id: 'a', type: 'transform', value: 1 }] });
const failing = def({ id: 'failing', steps: [{ id: 'a', type: 'fail', message: 'no' }] });
const waiting = def({ id: 'waiting', steps: [{ id: 'approve', type: 'signal' }, { id: 'after', type: 'transform', value: 2 }] });
const slow = def({ id: 'slow', steps: [{ id: 'nap', type: 'sleep', durationMs: 4000 }] });

/** An object as the object store lays it out: a meta message naming it, its chunks under its nuid. */
async function putObject(name: string, nuid: string) {
  const js = jetstream(fx.nc);
  await js.publish(`$O.${PAYLOADS_BUCKET}.C.${nuid}`, 'chunk of a large value');
  await js.publish(`$O.${PAYLOADS_BUCKET}.M.${Buffer.from(name).toString('base64url')}`, JSON.stringify({ name, bucket: PAYLOADS_BUCKET, nuid, size: 22, chunks: 1 }));
}

describe('retention', () => {
  it('purges the history, index entry, snapshots and objects of ended executions; a waiting and a running one stay', async () => {
    const jsm = await jetstreamManager(fx.nc);
    await jsm.streams.add({ name: `OBJ_${PAYLOADS_BUCKET}`, subjects: [`$O.${PAYLOADS_BUCKET}.C.>`, `$O.${PAYLOADS_BUCKET}.M.>`], storage: StorageType.File, allow_rollup_hdrs: true });
    const index = await ExecutionIndex.open(fx.nc);
    const snapshots = await SnapshotStore.open(fx.nc);
    const engine = await Engine.create({ nc: fx.nc, log: fx.log, index, snapshots, executors: defaultExecutors() });
    try {
      const ended = [
        await engine.start({ definition: done, executionId: 'old-done' }),
        await engine.start({ definition: failing, executionId: 'old-failed' }),
      ];
      for (const r of ended) await r.done;
      const cancelled = await engine.start({ definition: waiting, executionId: 'old-cancelled' });
      await cancelled.settled();
      await engine.cancel('old-cancelled');
      const wait = await engine.start({ definition: waiting, executionId: 'still-waiting' });
      expect((await wait.settled()).status).toBe('WAITING');
      const run = await engine.start({ definition: slow, executionId: 'still-running' });
      // A snapshot and an object for one ended and for the waiting execution.
      for (const id of ['old-done', 'still-waiting']) {
        const [first] = await fx.log.read(id);
        const snap = id === 'old-done' ? ended[0].snapshot : wait.snapshot;
        await snapshots.save(first, snap, 1);
        await putObject(`${id}/sha-of-a-large-value`, `NUID${id.replace(/-/g, '')}`);
      }
      await until('the index to list all five', async () => (await Promise.all(['old-done', 'old-failed', 'old-cancelled', 'still-waiting', 'still-running'].map((id) => index.get(id)))).every(Boolean), 10_000);
      const later = new Date(Date.now() + 60 * 60_000); // an hour from now: everything that ended is older than 30 min

      // Ended too recently for a 2-hour retention: nothing.
      expect((await purgeEndedExecutions(fx.nc, { olderThanMs: 2 * 3_600_000, now: later })).purged).toEqual([]);

      // A dry run lists what a real one would purge, and purges nothing.
      const dry = await purgeEndedExecutions(fx.nc, { olderThanMs: 30 * 60_000, now: later, dryRun: true });
      expect(dry.purged.map((p) => p.executionId).sort()).toEqual(['old-cancelled', 'old-done', 'old-failed']);
      expect(await fx.log.read('old-done')).toHaveLength(4);

      const report = await purgeEndedExecutions(fx.nc, { olderThanMs: 30 * 60_000, now: later });
      expect(report.purged.map((p) => [p.executionId, p.status, p.records]).sort()).toEqual([
        ['old-cancelled', 'CANCELLED', 3],
        ['old-done', 'COMPLETED', 4],
        ['old-failed', 'FAILED', 4],
      ]);
      expect(report.kept).toBe(2);

      const kv = await new Kvm(fx.nc).open(SNAPSHOTS_BUCKET);
      const snapshotKeys = async (id: string) => { const keys: string[] = []; for await (const k of await kv.keys(`${id}.*`)) keys.push(k); return keys; };
      const objectSubjects = async () => Object.keys((await jsm.streams.info(`OBJ_${PAYLOADS_BUCKET}`, { subjects_filter: '>' })).state.subjects ?? {});
      for (const id of ['old-done', 'old-failed', 'old-cancelled']) {
        expect(await fx.log.read(id)).toEqual([]);
        expect(await fx.log.last(id)).toBeNull();
        const fresh = await ExecutionIndex.open(fx.nc); // read from the bucket, not this process's memory
        expect(await fresh.get(id)).toBeUndefined();
      }
      expect(await snapshotKeys('old-done')).toEqual([]);
      expect((await objectSubjects()).sort()).toEqual([`$O.${PAYLOADS_BUCKET}.C.NUIDstillwaiting`, `$O.${PAYLOADS_BUCKET}.M.${Buffer.from('still-waiting/sha-of-a-large-value').toString('base64url')}`]);

      // The waiting and the running execution are untouched, and carry on.
      expect((await snapshotKeys('still-waiting')).sort()).toEqual([`still-waiting.${(await fx.log.read('still-waiting'))[0].seq}`, 'still-waiting.seqs']); // the snapshot and its list
      expect((await index.get('still-waiting'))?.status).toBe('WAITING');
      await engine.signal('still-waiting', 'approve', { ok: true });
      expect((await (engine.runners.get('still-waiting') ?? wait).done).status).toBe('COMPLETED');
      expect((await run.done).status).toBe('COMPLETED');
      expect((await fx.log.read('still-running')).map((r) => r.record.type)).toEqual(['ExecutionStarted', 'StepStarted', 'StepCompleted', 'ExecutionCompleted']);
    } finally {
      await engine.close();
      index.close();
    }
  });

  it('the worker loop purges at start, without waiting for its first interval', async () => {
    const engine = await fx.engine();
    const r = await engine.start({ definition: done, executionId: 'loop-done' });
    await r.done;
    await new Promise((res) => setTimeout(res, 1100));
    const stop = startRetention(fx.nc, { retentionMs: 1000, intervalMs: 60_000, logger: pino({ level: 'silent' }) });
    try {
      await until('the loop to purge loop-done', async () => (await fx.log.last('loop-done')) === null, 10_000);
    } finally {
      await stop();
    }
  });
});
