/**
 * One per engine: takes and lets go of slots of concurrency keys for the
 * executions this process hosts, renews the leases it holds (a worker that
 * dies stops renewing, and its leases expire), and wakes the waiters a freed
 * slot admits (a `wake` command: whichever worker takes it re-admits the
 * queued step or execution, in FIFO order per key).
 */
import type { Holder, Waiter } from './slots.js';
import type { LeaseStore } from './leaseStore.js';

export interface AdmissionOptions {
  /** How long a lease lives without renewal (SMARTSPEC_LEASE_TTL_MS, default 15 s); renewed every third of it. */
  ttlMs?: number;
  onError?: (err: unknown, context: string) => void;
}

/** Publishes the wake command of a waiter; `msgId` makes every worker's wake of one freed slot one command. */
export type Wake = (waiter: Waiter, key: string, msgId: string) => Promise<unknown>;

export interface KeyLimit { key: string; limit: number }

export const DEFAULT_LEASE_TTL_MS = 15_000;

export class Admission {
  /** Leases held here: holder id → its keys. */
  private readonly held = new Map<string, string[]>();
  /** Releases under way: close() waits for them, so their wakes leave before the connection closes. */
  private readonly releasing = new Set<Promise<void>>();
  private readonly renewal: NodeJS.Timeout;
  readonly ttlMs: number;

  constructor(readonly store: LeaseStore, private readonly wake: Wake, private readonly options: AdmissionOptions = {}) {
    this.ttlMs = options.ttlMs ?? DEFAULT_LEASE_TTL_MS;
    this.renewal = setInterval(() => void this.renewAll(), Math.max(100, Math.floor(this.ttlMs / 3)));
    this.renewal.unref();
  }

  /**
   * A slot of every key, or none: a key that is full queues the holder there and the slots
   * taken meanwhile are given back (so two holders never wait on each other). `force`: take
   * them whatever the count (an execution admitted before, hosted again).
   */
  async take(keys: KeyLimit[], holder: Holder, force = false): Promise<{ granted: true } | { granted: false; key: string; position: number }> {
    const taken: string[] = [];
    for (const { key, limit } of keys) {
      const r = await this.store.acquire(key, limit, holder, this.ttlMs, force);
      if (!r.granted) {
        for (const k of taken) await this.freeOne(k, holder.id);
        return { granted: false, key, position: r.position };
      }
      taken.push(key);
    }
    this.held.set(holder.id, taken);
    return { granted: true };
  }

  /** Let go of every slot the holder has here, waking the waiters that may take them. */
  async release(id: string): Promise<void> {
    const keys = this.held.get(id);
    if (!keys) return;
    this.held.delete(id);
    const done = (async () => { for (const key of keys) await this.freeOne(key, id); })();
    this.releasing.add(done);
    try { await done; } finally { this.releasing.delete(done); }
  }

  /** Holders whose leases this process renews. */
  get holders(): number {
    return this.held.size;
  }

  /** Stop renewing a holder's leases without giving them back: another process holds them now. */
  forget(id: string): void {
    this.held.delete(id);
  }

  /** Forget a waiter that no longer waits (its execution ended or moved on); the ones behind it may move up. */
  async dequeue(key: string, id: string): Promise<void> {
    const { wake, revision } = await this.store.dequeue(key, id);
    await this.wakeAll(key, wake, `r${revision}`);
  }

  private async freeOne(key: string, id: string): Promise<void> {
    const { wake, revision } = await this.store.release(key, id);
    await this.wakeAll(key, wake, `r${revision}`);
  }

  /** Wake waiters; `round` names the change that freed their slots, so workers seeing the same change send one command. */
  async wakeAll(key: string, waiters: Waiter[], round: string): Promise<void> {
    await Promise.all(waiters.map((w) => this.wake(w, key, `wake:${w.id}:${round}`).catch((err) => this.options.onError?.(err, 'wake publish'))));
  }

  private async renewAll(): Promise<void> {
    for (const [id, keys] of this.held) {
      for (const key of keys) {
        try {
          if (!(await this.store.renew(key, id, this.ttlMs))) this.options.onError?.(new Error(`lease of '${id}' on key '${key}' expired before it was renewed`), 'lease renewal');
        } catch (err) {
          this.options.onError?.(err, 'lease renewal');
        }
      }
    }
  }

  /** Stop renewing; the leases still held are given back (their steps stop with this process). */
  async close(): Promise<void> {
    clearInterval(this.renewal);
    await Promise.all([...this.held.keys()].map((id) => this.release(id).catch((err) => this.options.onError?.(err, 'lease release'))));
    await Promise.allSettled([...this.releasing]);
  }
}
