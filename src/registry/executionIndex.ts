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
import { isTerminal, type ExecutionStatus } from '../../machines/index.js';
import { EXECUTION_INDEX_BUCKET } from '../nats/names.js';
import { DEFAULT_TENANT } from '../auth/principal.js';
import { isWrongLastSequence } from '../nats/compareAndSet.js';

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
  /** Log sequence of the record the status comes from: a status from an earlier record never replaces it. */
  lastSeq?: number;
}

/** An entry as read or written, with its revision (0: the key was never written). */
type KnownEntry = { revision: number; entry?: IndexEntry };

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
  private readonly updates = new Map<string, UpdateSlot>();

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

  /**
   * Write a new execution's first entry, only if its key holds none (a compare-and-set on
   * revision 0): false when one exists. An edge's existence check and its PENDING write in one request.
   */
  async create(entry: IndexEntry): Promise<boolean> {
    let revision: number;
    try {
      revision = await this.kv.create(entry.executionId, JSON.stringify(entry));
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
    if (this.following.started) this.apply(entry.executionId, entry, revision);
    return true;
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
   * A status that is not an end waits up to HOLD_MS before it is written (unless someone
   * waits for it: settled, flush), so a short execution's RUNNING and COMPLETED are one write.
   */
  update(entry: IndexUpdate): Promise<void> {
    const queued = this.updates.get(entry.executionId);
    if (queued) {
      queued.next = entry;
      if (isFinal(entry)) queued.release?.();
      return queued.done;
    }
    const slot: UpdateSlot = { next: entry, done: Promise.resolve() };
    slot.done = (async () => {
      if (!isFinal(entry)) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, HOLD_MS);
          timer.unref();
          slot.release = () => { clearTimeout(timer); resolve(); };
        });
        slot.release = undefined;
      }
      // The entry as this process last wrote or read it: each write is a compare-and-set on its
      // revision, so a try of an earlier write that lands late (sent while the bucket elected a
      // leader, never answered) is refused instead of putting an older status back over a newer one.
      let known: KnownEntry | undefined;
      try {
        while (slot.next) {
          const e = slot.next;
          slot.next = undefined;
          try {
            known = await this.retrying(() => this.writeOver(e, known).catch((err) => { known = undefined; return Promise.reject(err); }));
          } catch (err) {
            // A newer status that came meanwhile supersedes this one: it must not be dropped with it
            // (an execution that ended while the bucket had no leader stayed listed as RUNNING).
            if (!slot.next) throw err;
          }
        }
      } finally {
        this.updates.delete(entry.executionId);
      }
    })();
    this.updates.set(entry.executionId, slot);
    return slot.done;
  }

  /** Resolves once the updates asked for so far for one execution are written (or given up on). */
  async settled(executionId: string): Promise<void> {
    const slot = this.updates.get(executionId);
    slot?.release?.();
    await slot?.done.catch(() => undefined);
  }

  /** Resolves once every update asked for so far is written (a short-lived process waits for it before it closes NATS). */
  async flush(): Promise<void> {
    await Promise.all([...this.updates.keys()].map((id) => this.settled(id)));
  }

  /**
   * Write `e` over the entry at `known`; not known, over the entry as the mirror has it (one
   * request instead of two: a read, then the write), or as read when the mirror has none or
   * is behind (its compare-and-set refused). Returns what the bucket now holds.
   */
  private async writeOver(e: IndexUpdate, known?: KnownEntry): Promise<KnownEntry> {
    const mirrored = known ? undefined : this.following.started ? this.entries.get(e.executionId) : undefined;
    if (mirrored) {
      try {
        return await this.writeAt(e, mirrored);
      } catch {
        // Behind the bucket (or the write failed): read it, and try once more now.
      }
    }
    return this.writeAt(e, known ?? (await this.read(e.executionId)));
  }

  private async writeAt(e: IndexUpdate, current: KnownEntry): Promise<KnownEntry> {
    const existing = current.entry;
    // Another host wrote a later status first (it took the execution over while this one's write waited out a fail-over).
    if (existing?.lastSeq !== undefined && e.lastSeq !== undefined && existing.lastSeq > e.lastSeq) return current;
    const firstSeq = e.firstSeq ?? existing?.firstSeq;
    const tenant = e.tenant ?? existing?.tenant;
    const entry: IndexEntry = { ...e, createdAt: e.createdAt ?? existing?.createdAt ?? e.updatedAt, ...(firstSeq ? { firstSeq } : {}), ...(tenant ? { tenant } : {}) };
    const data = JSON.stringify(entry);
    const revision = current.revision ? await this.kv.update(e.executionId, data, current.revision) : await this.kv.create(e.executionId, data);
    if (this.following.started) this.apply(e.executionId, entry, revision); // a listing shows this process's own writes at once
    return { revision, entry };
  }

  /** The entry in the bucket with its revision (0: none ever written). */
  private async read(executionId: string): Promise<KnownEntry> {
    const e = await this.kv.get(executionId);
    if (!e) return { revision: 0 };
    return { revision: e.revision, entry: e.operation === 'PUT' ? e.json<IndexEntry>() : undefined };
  }

  /** Through a fail-over of the bucket's leader, which can take longer than 7 s (as long as an append keeps trying). */
  private async retrying<T>(op: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + WRITE_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        return await op();
      } catch (err) {
        if (Date.now() > deadline || this.nc.isClosed()) throw err;
        await new Promise((r) => setTimeout(r, Math.min(1000, 250 * attempt)).unref());
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

/** How long an index write keeps trying through a NATS outage. */
const WRITE_RETRY_MS = 30_000;
/** How long a status that is not an end may wait for the next one (see update). */
const HOLD_MS = 200;

interface UpdateSlot {
  /** The newest update not yet written. */
  next?: IndexUpdate;
  done: Promise<void>;
  /** Set while the slot holds its first, not final, status back: writes it now. */
  release?: () => void;
}

const isFinal = (e: IndexUpdate) => isTerminal(e.status);

const isActive = (e: IndexEntry) => e.status === 'PENDING' || e.status === 'RUNNING';
