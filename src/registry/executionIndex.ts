/**
 * The execution index: one small KV entry per execution (status, workflow,
 * times) for listings. Derived from the log and rebuildable from it; the log
 * stays the truth. Writers put on status changes; readers keep a live map from
 * a KV watch, so a listing is a scan of memory rather than of the bucket.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { ExecutionStatus } from '../../machines/index.js';
import { EXECUTION_INDEX_BUCKET } from '../nats/names.js';

export interface IndexEntry {
  executionId: string;
  workflowId: string;
  status: ExecutionStatus;
  createdAt: string;
  updatedAt: string;
}

export class ExecutionIndex {
  private readonly entries = new Map<string, IndexEntry>();
  private watching?: Promise<void>;

  private constructor(private readonly kv: KV, private readonly nc: NatsConnection) {}

  static async open(nc: NatsConnection, replicas = 1): Promise<ExecutionIndex> {
    return new ExecutionIndex(await new Kvm(nc).create(EXECUTION_INDEX_BUCKET, { history: 1, storage: StorageType.File, replicas }), nc);
  }

  async put(entry: IndexEntry): Promise<void> {
    await this.kv.put(entry.executionId, JSON.stringify(entry));
  }

  async get(executionId: string): Promise<IndexEntry | undefined> {
    const local = this.entries.get(executionId);
    if (local) return local;
    const e = await this.kv.get(executionId);
    return e && e.operation === 'PUT' ? (e.json() as IndexEntry) : undefined;
  }

  /**
   * Start mirroring the bucket in memory; resolves once the current entries are in.
   * The watch is restarted if it ends (a NATS fail-over ends it), so the map keeps up.
   */
  async watch(): Promise<void> {
    if (this.watching) return this.watching;
    let ready!: () => void;
    this.watching = new Promise((res) => (ready = res));
    const run = async (): Promise<void> => {
      for (;;) {
        try {
          const iter = await this.kv.watch();
          if ((await this.kv.status()).values === 0) ready(); // an empty bucket sends no entry
          for await (const e of iter) {
            if (e.operation === 'PUT') this.entries.set(e.key, e.json() as IndexEntry);
            else this.entries.delete(e.key);
            if (e.delta === 0) ready();
          }
        } catch {
          // connection trouble: watch again below
        }
        if (this.closed || this.nc.isClosed()) return;
        await new Promise((r) => setTimeout(r, 500).unref());
      }
    };
    void run();
    return this.watching;
  }

  private closed = false;

  /** Stop the watch (it would otherwise restart). */
  close(): void {
    this.closed = true;
  }

  /**
   * Re-read entries that may still change (not ended) from the bucket: a watch can stall
   * silently across a NATS fail-over, and a listing must not show a finished run as RUNNING.
   */
  async refresh(entries: IndexEntry[]): Promise<void> {
    await Promise.all(
      entries
        .filter((e) => e.status !== 'COMPLETED' && e.status !== 'FAILED' && e.status !== 'CANCELLED')
        .map(async (e) => {
          const fresh = await this.kv.get(e.executionId);
          if (fresh && fresh.operation === 'PUT') this.entries.set(e.executionId, fresh.json() as IndexEntry);
        }),
    );
  }

  list(filter: { status?: ExecutionStatus; workflowId?: string; limit?: number } = {}): IndexEntry[] {
    const out: IndexEntry[] = [];
    for (const e of this.entries.values()) {
      if (filter.status && e.status !== filter.status) continue;
      if (filter.workflowId && e.workflowId !== filter.workflowId) continue;
      out.push(e);
    }
    out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    return out.slice(0, filter.limit ?? 100);
  }
}
