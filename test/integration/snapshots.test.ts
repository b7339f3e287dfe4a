/**
 * The snapshot store on a real nats-server: the nearest snapshot at or before
 * a sequence, among this execution's only (not those of an execution whose id
 * shares a prefix), none when there is none, deleted ones skipped; and the
 * lookup leaves no consumer behind on the bucket's stream.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { describe, expect, it } from 'vitest';
import { SnapshotStore } from '../../src/log/snapshots.js';
import { SNAPSHOTS_BUCKET } from '../../src/nats/names.js';
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
});
