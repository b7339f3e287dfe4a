/**
 * Concurrency keys and rate keys in a KV bucket, one entry per key (its name
 * hashed: keys are user data). Every change is a compare-and-set on the
 * entry's revision, retried on conflict, so workers on any host agree. A
 * lease carries `expiresAt`: its worker renews it; once past, any writer drops
 * it (nats-server 2.9 has no per-message TTL, so expiry is data).
 */
import { createHash } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import { StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { LEASES_BUCKET } from '../nats/names.js';
import { KvMirror } from '../nats/kvMirror.js';
import { acquire, admissible, emptyKey, emptyRate, prune, release, renew, reserve, spend, type AcquireResult, type Holder, type KeyState, type RateState, type Waiter } from './slots.js';

const hashed = (key: string) => createHash('sha256').update(key).digest('hex').slice(0, 40);
export const concurrencyEntry = (key: string) => `c.${hashed(key)}`;
export const rateEntry = (key: string) => `r.${hashed(key)}`;

/** Conflicting writers retry; this many in a row means something is wrong. */
const MAX_TRIES = 50;

export class LeaseStore {
  private constructor(private readonly kv: KV, private readonly nc: NatsConnection) {}

  static async open(nc: NatsConnection, replicas = 1): Promise<LeaseStore> {
    return new LeaseStore(await new Kvm(nc).create(LEASES_BUCKET, { history: 1, storage: StorageType.File, replicas }), nc);
  }

  /** Read, change, write back if the entry is still the one read; again on conflict. */
  private async change<S, R>(entry: string, init: () => S, fn: (s: S) => { state: S; result: R }): Promise<{ state: S; result: R; revision: number }> {
    for (let tries = 1; ; tries++) {
      const e = await this.kv.get(entry);
      const current = e && e.operation === 'PUT' ? e.json<S>() : init();
      const { state, result } = fn(current);
      if (state === current && e) return { state, result, revision: e.revision };
      try {
        const data = JSON.stringify(state);
        const revision = e ? await this.kv.update(entry, data, e.revision) : await this.kv.create(entry, data);
        return { state, result, revision };
      } catch (err) {
        if (tries >= MAX_TRIES) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 5 * Math.min(tries, 10)));
      }
    }
  }

  async acquire(key: string, limit: number, holder: Holder, ttlMs: number, force = false): Promise<AcquireResult & { revision: number }> {
    const { state, result, revision } = await this.change(concurrencyEntry(key), () => emptyKey(key, limit), (s) => {
      const r = acquire(s, holder, limit, Date.now(), ttlMs, force);
      return { state: r.state, result: r };
    });
    return { ...result, state, revision };
  }

  /** Let a slot go; returns the waiters that may now take one (to be woken), and the revision. */
  async release(key: string, id: string): Promise<{ wake: Waiter[]; revision: number }> {
    const { state, revision } = await this.change(concurrencyEntry(key), () => emptyKey(key, 1), (s) => ({ state: s.leases.some((l) => l.id === id) || s.queue.some((w) => w.id === id) ? release(s, id) : s, result: undefined }));
    return { wake: admissible(state, Date.now()), revision };
  }

  /** Leave the queue only (a waiter found gone: its execution ended or moved on); returns the waiters that may now take a slot. */
  async dequeue(key: string, id: string): Promise<{ wake: Waiter[]; revision: number }> {
    const { state, revision } = await this.change(concurrencyEntry(key), () => emptyKey(key, 1), (s) => ({ state: s.queue.some((w) => w.id === id) ? { ...s, queue: s.queue.filter((w) => w.id !== id) } : s, result: undefined }));
    return { wake: admissible(state, Date.now()), revision };
  }

  /** Renew a held lease; false when it is no longer held (it expired and was dropped). */
  async renew(key: string, id: string, ttlMs: number): Promise<boolean> {
    const { result } = await this.change(concurrencyEntry(key), () => emptyKey(key, 1), (s) => {
      const next = renew(s, id, Date.now(), ttlMs);
      return { state: next ?? s, result: next !== undefined };
    });
    return result;
  }

  /** Drop expired leases of a key; returns the waiters that may now take a slot, and the revision. */
  async prune(key: string): Promise<{ wake: Waiter[]; revision: number }> {
    const now = Date.now();
    const { state, revision } = await this.change(concurrencyEntry(key), () => emptyKey(key, 1), (s) => ({ state: prune(s, now), result: undefined }));
    return { wake: admissible(state, now), revision };
  }

  /** Reserve a start on a rate key: the epoch ms at which it may start. */
  async reserve(key: string, perMinute: number | undefined): Promise<number> {
    const { result } = await this.change<RateState, number>(rateEntry(key), () => emptyRate(key), (s) => {
      const r = reserve(s, perMinute, Date.now());
      return { state: r.state, result: r.at };
    });
    return result;
  }

  /** Count an LLM call's tokens against a rate key. */
  async spend(key: string, tokens: number, tokensPerMinute: number): Promise<void> {
    if (tokens <= 0) return;
    await this.change<RateState, undefined>(rateEntry(key), () => emptyRate(key), (s) => ({ state: spend(s, tokens, tokensPerMinute, Date.now()), result: undefined }));
  }

  async readRate(key: string): Promise<RateState | undefined> {
    const e = await this.kv.get(rateEntry(key));
    return e && e.operation === 'PUT' ? e.json<RateState>() : undefined;
  }

  async read(key: string): Promise<KeyState | undefined> {
    const e = await this.kv.get(concurrencyEntry(key));
    return e && e.operation === 'PUT' ? e.json<KeyState>() : undefined;
  }

  /** Every concurrency key's state, then every change (deleted keys: undefined), until `stop()`; across fail-overs too (KvMirror). */
  watch(onChange: (entry: string, state: KeyState | undefined) => void): { stop(): void } {
    const mirror = new KvMirror<KeyState>(this.kv, this.nc, { stallCheckMs: 5000, retryMs: 500, apply: (entry, state) => { if (entry.startsWith('c.')) onChange(entry, state); } });
    void mirror.start();
    return { stop: () => mirror.close() };
  }
}
