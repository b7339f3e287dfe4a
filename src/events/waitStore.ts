/**
 * The waitForEvent steps waiting now, in a KV bucket: one entry per
 * execution, step and attempt, with what the wait matches on (subject,
 * expression, the values the expression may read) and the events stream
 * sequence after which events count. Kept while the execution is passivated;
 * every worker's WaitDispatcher watches it.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { DeliverPolicy, jetstream, jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { KvMirror } from '../nats/kvMirror.js';
import { WAITS_BUCKET } from '../nats/names.js';

export interface WaitRef { executionId: string; stepId: string; attempt: number }
export interface WaitEntry extends WaitRef {
  subject: string;
  match?: string;
  /** What `match` may read besides the event: `input`, `steps`, `execution`. */
  scope: Record<string, unknown>;
  /** Events stored after this sequence of the events stream count. */
  afterSeq: number;
  /** The step's `after` (ms since the epoch): events published before it do not count, even after `afterSeq`. */
  afterMs?: number;
}

export const waitKey = (w: WaitRef) => `${w.executionId}.${w.stepId}.${w.attempt}`;

export type WaitChange = { key: string; entry: WaitEntry | undefined };

export class WaitStore {
  private constructor(private readonly kv: KV, private readonly jsm: JetStreamManager, private readonly nc: NatsConnection, readonly stream: string) {}

  static async open(nc: NatsConnection, stream: string, replicas = 1): Promise<WaitStore> {
    return new WaitStore(await new Kvm(nc).create(WAITS_BUCKET, { history: 1, storage: StorageType.File, replicas }), await jetstreamManager(nc), nc, stream);
  }

  /**
   * Record a wait starting now; returns the sequence after which events count: the stream's last
   * one, or with `afterMs` in the past, the one before the first event on the subject published since.
   */
  async arm(wait: Omit<WaitEntry, 'afterSeq'>): Promise<number> {
    const last = (await this.jsm.streams.info(this.stream)).state.last_seq;
    const afterSeq = wait.afterMs !== undefined && wait.afterMs < Date.now() ? Math.min(last, await this.seqBefore(wait.subject, wait.afterMs, last)) : last;
    await this.kv.put(waitKey(wait), JSON.stringify({ ...wait, afterSeq }));
    return afterSeq;
  }

  /** The sequence just before the first event on `subject` stored at or after `ms` (`last` when there is none yet). */
  private async seqBefore(subject: string, ms: number, last: number): Promise<number> {
    const consumer = await jetstream(this.nc).consumers.get(this.stream, { filter_subjects: subject, deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(ms).toISOString() });
    try {
      if ((await consumer.info(true)).num_pending === 0) return last;
      const first = await consumer.next({ expires: 5000 });
      return first ? first.seq - 1 : last;
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  async disarm(ref: WaitRef): Promise<void> {
    await this.kv.delete(waitKey(ref));
  }

  /** Every wait, then every change, until `stop()`; `ready` once the current ones are in; across fail-overs too (KvMirror). */
  watch(onChange: (change: WaitChange) => void, ready: () => void, stallCheckMs = 5000): { stop(): void } {
    const mirror = new KvMirror<WaitEntry>(this.kv, this.nc, { stallCheckMs, retryMs: 500, apply: (key, entry) => onChange({ key, entry }) });
    void mirror.start().then(ready);
    return { stop: () => mirror.close() };
  }
}
