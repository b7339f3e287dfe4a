/**
 * The execution index: one small KV entry per execution (status, workflow,
 * times) for listings. Derived from the log and rebuildable from it; the log
 * stays the truth. Writers put on status changes; readers keep a live map from
 * a KV watch, so a listing is a scan of memory rather than of the bucket.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { KvMirror } from '../nats/kvMirror.js';
import type { ExecutionStatus } from '../../machines/index.js';
import { EXECUTION_INDEX_BUCKET } from '../nats/names.js';
import { DEFAULT_TENANT } from '../auth/principal.js';

export interface IndexEntry {
  executionId: string;
  workflowId: string;
  status: ExecutionStatus;
  createdAt: string;
  updatedAt: string;
  /** Stream sequence of the execution's first record, so reads of its history start there. */
  firstSeq?: number;
  /** The tenant that started it; absent on entries written before tenants (the default tenant's). */
  tenant?: string;
}

/** A status change to record; `createdAt`, `firstSeq` and `tenant` are kept from the entry when absent. */
export type IndexUpdate = Omit<IndexEntry, 'createdAt'> & { createdAt?: string };

export class ExecutionIndex {
  /** The mirror of the bucket, with each entry's revision so that a late delivery never overwrites a newer one. */
  private readonly entries = new Map<string, { entry: IndexEntry; revision: number }>();
  /** The bucket followed in memory (KvMirror: a watch that went quiet in a fail-over is replaced). */
  private readonly following: KvMirror<IndexEntry>;
  /** PENDING + RUNNING entries per tenant, kept with the mirror: the cap is checked on every submission. */
  private readonly active = new Map<string, number>();
  /** Per execution: the update being written, and the newest one waiting behind it. */
  private readonly updates = new Map<string, { next?: IndexUpdate; done: Promise<void> }>();

  private constructor(private readonly kv: KV, private readonly nc: NatsConnection, stallCheckMs: number) {
    this.following = new KvMirror<IndexEntry>(kv, nc, { stallCheckMs, retryMs: 500, apply: (key, entry, revision) => this.apply(key, entry, revision) });
  }

  /** `stallCheckMs`: how often the watch is checked for having gone quiet while the bucket moved on. */
  static async open(nc: NatsConnection, replicas = 1, stallCheckMs = 2000): Promise<ExecutionIndex> {
    const kv = await new Kvm(nc).create(EXECUTION_INDEX_BUCKET, { history: 1, storage: StorageType.File, replicas });
    return new ExecutionIndex(kv, nc, stallCheckMs);
  }

  async put(entry: IndexEntry): Promise<void> {
    const revision = await this.kv.put(entry.executionId, JSON.stringify(entry));
    if (this.following.started) this.apply(entry.executionId, entry, revision); // a listing shows this process's own writes at once
  }

  /** Take an entry out (a submission that could not be published leaves nothing behind). */
  async remove(executionId: string): Promise<void> {
    await this.kv.delete(executionId);
    this.mirror(executionId, undefined);
  }

  /**
   * Record an execution's new status from its log, in the background: writes of
   * one execution go out in order and only the newest waiting one is written
   * (so a retried RUNNING can never land after COMPLETED), retried through a
   * NATS fail-over. Without `createdAt` (or `firstSeq`), the existing entry's is kept.
   */
  update(entry: IndexUpdate): Promise<void> {
    const queued = this.updates.get(entry.executionId);
    if (queued) {
      queued.next = entry;
      return queued.done;
    }
    const slot: { next?: IndexUpdate; done: Promise<void> } = { next: entry, done: Promise.resolve() };
    slot.done = (async () => {
      try {
        while (slot.next) {
          const e = slot.next;
          slot.next = undefined;
          const existing = e.createdAt && e.firstSeq && e.tenant ? undefined : await this.retrying(() => this.get(e.executionId));
          const firstSeq = e.firstSeq ?? existing?.firstSeq;
          const tenant = e.tenant ?? existing?.tenant;
          await this.retrying(() => this.put({ ...e, createdAt: e.createdAt ?? existing?.createdAt ?? e.updatedAt, ...(firstSeq ? { firstSeq } : {}), ...(tenant ? { tenant } : {}) }));
        }
      } finally {
        this.updates.delete(entry.executionId);
      }
    })();
    this.updates.set(entry.executionId, slot);
    return slot.done;
  }

  /** Resolves once every update asked for so far is written (a short-lived process waits for it before it closes NATS). */
  async flush(): Promise<void> {
    await Promise.all([...this.updates.values()].map((u) => u.done.catch(() => undefined)));
  }

  private async retrying<T>(op: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (err) {
        if (attempt >= 8 || this.nc.isClosed()) throw err;
        await new Promise((r) => setTimeout(r, 250 * attempt).unref());
      }
    }
  }

  async get(executionId: string): Promise<IndexEntry | undefined> {
    const local = this.entries.get(executionId);
    if (local) return local.entry;
    const e = await this.kv.get(executionId);
    return e && e.operation === 'PUT' ? (e.json() as IndexEntry) : undefined;
  }

  /** Start mirroring the bucket in memory; resolves once the current entries are in. */
  watch(): Promise<void> {
    return this.following.start();
  }

  private apply(key: string, entry: IndexEntry | undefined, revision: number): void {
    const known = this.entries.get(key);
    if (known && known.revision >= revision) return;
    this.mirror(key, entry && { entry, revision });
  }

  /** Replace (or drop) one mirrored entry, keeping the per-tenant active counts in step. */
  private mirror(key: string, next: { entry: IndexEntry; revision: number } | undefined): void {
    const before = this.entries.get(key)?.entry;
    if (before && isActive(before)) this.count(before, -1);
    if (next) this.entries.set(key, next);
    else this.entries.delete(key);
    if (next && isActive(next.entry)) this.count(next.entry, +1);
  }

  private count(entry: IndexEntry, delta: number): void {
    const tenant = entry.tenant ?? DEFAULT_TENANT;
    const n = (this.active.get(tenant) ?? 0) + delta;
    if (n > 0) this.active.set(tenant, n);
    else this.active.delete(tenant);
  }

  /** How many of a tenant's executions are PENDING or RUNNING (the per-tenant cap counts these). */
  activeCount(tenant: string): number {
    return this.active.get(tenant) ?? 0;
  }

  /** Stop the watch (it would otherwise restart). */
  close(): void {
    this.following.close();
  }

  /** `tenant`: only that tenant's executions (entries without one are the default tenant's). */
  list(filter: { status?: ExecutionStatus; workflowId?: string; limit?: number; tenant?: string } = {}): IndexEntry[] {
    const out: IndexEntry[] = [];
    for (const { entry: e } of this.entries.values()) {
      if (filter.tenant && (e.tenant ?? DEFAULT_TENANT) !== filter.tenant) continue;
      if (filter.status && e.status !== filter.status) continue;
      if (filter.workflowId && e.workflowId !== filter.workflowId) continue;
      out.push(e);
    }
    out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
    return out.slice(0, filter.limit ?? 100);
  }
}

const isActive = (e: IndexEntry) => e.status === 'PENDING' || e.status === 'RUNNING';
