/**
 * Snapshots of an execution's actor at checkpoints, in a KV bucket, so an
 * actor is rebuilt from the nearest snapshot and the records after it rather
 * than from event 1: resuming a 100,000-event history reads a few hundred
 * records. A snapshot only shortens the fold — the log stays the truth, and a
 * missing or lost snapshot just means a longer read.
 *
 * Keys: `<executionId>.<seq>` per snapshot, and `<executionId>.seqs`, the list
 * of those sequences, so a lookup is two gets rather than a key listing (a
 * consumer created and deleted on the bucket's stream).
 */
import { Kvm, type KV } from '@nats-io/kv';
import { jetstream, JetStreamApiError, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { compileByContent, type WorkflowContext, type WorkflowSnapshot } from '../../machines/index.js';
import { kvKeys } from '../nats/kvKeys.js';
import { SNAPSHOTS_BUCKET } from '../nats/names.js';
import type { StoredRecord } from './records.js';

/**
 * Records between two snapshots of one execution (a checkpoint record at or after this distance).
 * A resume folds at most about this many records (about 8 µs each) after the snapshot it starts
 * from; each snapshot costs three small KV requests, in the background.
 */
export const SNAPSHOT_EVERY = 100;

const seqsKey = (executionId: string) => `${executionId}.seqs`;
/** A compare-and-set of the list lost to a concurrent save: read it again. */
const WRONG_LAST_SEQUENCE = 10071;

export interface StoredSnapshot {
  seq: number;
  /** The checkpoint record the snapshot was taken after. */
  record: StoredRecord['record'];
  value: unknown;
  context: WorkflowContext;
  /** Records in the history up to and including `record` (absent in snapshots older than the history limit). */
  count?: number;
}

export interface RestoredSnapshot { stored: StoredSnapshot; snapshot: WorkflowSnapshot }

export class SnapshotStore {
  private constructor(private readonly kv: KV, private readonly js: JetStreamClient) {}

  static async open(nc: NatsConnection, replicas = 1): Promise<SnapshotStore> {
    return new SnapshotStore(await new Kvm(nc).create(SNAPSHOTS_BUCKET, { history: 1, storage: StorageType.File, replicas }), jetstream(nc));
  }

  async save(stored: StoredRecord, snapshot: WorkflowSnapshot, count: number): Promise<void> {
    const executionId = stored.record.executionId;
    const value: StoredSnapshot = { seq: stored.seq, record: stored.record, value: snapshot.value, context: snapshot.context, count };
    await this.kv.put(`${executionId}.${stored.seq}`, JSON.stringify(value));
    // Listed once written: a listed sequence has its snapshot (unless deleted since).
    for (let attempt = 1; ; attempt++) {
      const e = await this.kv.get(seqsKey(executionId));
      const seqs = e?.operation === 'PUT' ? e.json<number[]>() : [];
      if (seqs.includes(stored.seq)) return;
      const list = JSON.stringify([...seqs, stored.seq].sort((a, b) => a - b));
      try {
        await (e ? this.kv.update(seqsKey(executionId), list, e.revision) : this.kv.create(seqsKey(executionId), list));
        return;
      } catch (err) {
        if (attempt >= 3 || !isLostRace(err)) throw err;
      }
    }
  }

  /** The newest snapshot at or before `maxSeq`, if any. */
  async nearest(executionId: string, maxSeq: number): Promise<RestoredSnapshot | undefined> {
    // Newest first; one deleted since it was listed is skipped.
    for (const seq of (await this.seqs(executionId)).filter((s) => s <= maxSeq).sort((a, b) => b - a)) {
      const found = await this.at(executionId, seq);
      if (found) return found;
    }
    return undefined;
  }

  /** The sequences of an execution's snapshots, in no particular order. */
  async seqs(executionId: string): Promise<number[]> {
    return (await this.recordedSeqs(executionId)) ?? this.listed(executionId);
  }

  /**
   * The sequences as kept under `<id>.seqs` (one get), or undefined when that key is absent: the
   * execution has no snapshot, or has only snapshots saved before the key existed (`seqs` lists
   * those, through a consumer: a caller that knows the history is too short for any need not).
   */
  async recordedSeqs(executionId: string): Promise<number[] | undefined> {
    const kept = await this.kv.get(seqsKey(executionId));
    return kept?.operation === 'PUT' ? kept.json<number[]>() : undefined;
  }

  /** The snapshot taken at `seq`, unless it is gone. */
  async at(executionId: string, seq: number): Promise<RestoredSnapshot | undefined> {
    const e = await this.kv.get(`${executionId}.${seq}`);
    if (!e || e.operation !== 'PUT') return undefined;
    const stored = e.json<StoredSnapshot>();
    const machine = compileByContent(stored.context.definition);
    return { stored, snapshot: machine.resolveState({ value: stored.value as never, context: stored.context }) };
  }

  /** The sequences of the snapshots kept before the list existed, by a key listing. */
  private async listed(executionId: string): Promise<number[]> {
    const keys = await kvKeys(this.js, SNAPSHOTS_BUCKET, `${executionId}.*`);
    return keys.map((key) => Number(key.slice(key.lastIndexOf('.') + 1))).filter((seq) => Number.isInteger(seq));
  }
}

function isLostRace(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE;
}
