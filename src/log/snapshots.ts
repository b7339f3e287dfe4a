/**
 * Snapshots of an execution's actor at checkpoints, in a KV bucket, so an
 * actor is rebuilt from the nearest snapshot and the records after it rather
 * than from event 1: resuming a 100,000-event history reads a few hundred
 * records. A snapshot only shortens the fold — the log stays the truth, and a
 * missing or lost snapshot just means a longer read.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { jetstream, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { compileByContent, type WorkflowContext, type WorkflowSnapshot } from '../../machines/index.js';
import { kvKeys } from '../nats/kvKeys.js';
import { SNAPSHOTS_BUCKET } from '../nats/names.js';
import type { StoredRecord } from './records.js';

/** Records between two snapshots of one execution (a checkpoint record at or after this distance). */
export const SNAPSHOT_EVERY = 500;

export interface StoredSnapshot {
  seq: number;
  /** The checkpoint record the snapshot was taken after. */
  record: StoredRecord['record'];
  value: unknown;
  context: WorkflowContext;
  /** Records in the history up to and including `record` (absent in snapshots older than the history limit). */
  count?: number;
}

export class SnapshotStore {
  private constructor(private readonly kv: KV, private readonly js: JetStreamClient) {}

  static async open(nc: NatsConnection, replicas = 1): Promise<SnapshotStore> {
    return new SnapshotStore(await new Kvm(nc).create(SNAPSHOTS_BUCKET, { history: 1, storage: StorageType.File, replicas }), jetstream(nc));
  }

  async save(stored: StoredRecord, snapshot: WorkflowSnapshot, count: number): Promise<void> {
    const value: StoredSnapshot = { seq: stored.seq, record: stored.record, value: snapshot.value, context: snapshot.context, count };
    await this.kv.put(`${stored.record.executionId}.${stored.seq}`, JSON.stringify(value));
  }

  /** The newest snapshot at or before `maxSeq`, if any. */
  async nearest(executionId: string, maxSeq: number): Promise<{ stored: StoredSnapshot; snapshot: WorkflowSnapshot } | undefined> {
    let best = 0;
    for (const key of await kvKeys(this.js, SNAPSHOTS_BUCKET, `${executionId}.*`)) {
      const seq = Number(key.slice(key.lastIndexOf('.') + 1));
      if (seq <= maxSeq && seq > best) best = seq;
    }
    if (best === 0) return undefined;
    const e = await this.kv.get(`${executionId}.${best}`);
    if (!e || e.operation !== 'PUT') return undefined;
    const stored = e.json<StoredSnapshot>();
    const machine = compileByContent(stored.context.definition);
    return { stored, snapshot: machine.resolveState({ value: stored.value as never, context: stored.context }) };
  }
}
