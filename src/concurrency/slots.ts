/**
 * The state of one concurrency key and of one rate key, and the pure rules
 * that change them. Kept in the leases bucket (leaseStore.ts); every change is
 * written with compare-and-set, so workers never lose each other's changes.
 */

/** Who holds a slot: one step attempt (`<executionId>:<stepId>:<attempt>`) or one execution. */
export interface Holder { id: string; executionId: string; stepId?: string; attempt?: number }
export interface Lease extends Holder {
  /** Epoch ms: renewed by the holder's worker; once past, the slot is free (the worker died). */
  expiresAt: number;
}
/** Waiting for a slot, in order of arrival. */
export interface Waiter extends Holder { since: number }

export interface KeyState {
  key: string;
  /** The limit its last writer gave (a key is meant to have one limit). */
  limit: number;
  leases: Lease[];
  queue: Waiter[];
}

export const emptyKey = (key: string, limit: number): KeyState => ({ key, limit, leases: [], queue: [] });

/** The state without expired leases. */
export function prune(s: KeyState, now: number): KeyState {
  const leases = s.leases.filter((l) => l.expiresAt > now);
  return leases.length === s.leases.length ? s : { ...s, leases };
}

export type AcquireResult = { state: KeyState; granted: true } | { state: KeyState; granted: false; position: number };

/**
 * Take a slot, or queue for one. FIFO: a newcomer gets a slot only when the
 * waiters ahead of it leave one free; a waiter gets one when it is among the
 * first `free` of the queue. A holder that already holds it renews. `force`: an
 * execution admitted before (its record says so) takes its slot back whatever the count.
 */
export function acquire(s0: KeyState, holder: Holder, limit: number, now: number, ttlMs: number, force = false): AcquireResult {
  const s = { ...prune(s0, now), limit };
  const lease: Lease = { ...holder, expiresAt: now + ttlMs };
  if (force && !s.leases.some((l) => l.id === holder.id)) return { state: { ...s, leases: [...s.leases, lease], queue: s.queue.filter((w) => w.id !== holder.id) }, granted: true };
  if (s.leases.some((l) => l.id === holder.id)) return { state: { ...s, leases: s.leases.map((l) => (l.id === holder.id ? lease : l)) }, granted: true };
  const free = limit - s.leases.length;
  const at = s.queue.findIndex((w) => w.id === holder.id);
  const ahead = at === -1 ? s.queue.length : at;
  if (ahead < free) return { state: { ...s, leases: [...s.leases, lease], queue: s.queue.filter((w) => w.id !== holder.id) }, granted: true };
  if (at !== -1) return { state: s, granted: false, position: at };
  return { state: { ...s, queue: [...s.queue, { ...holder, since: now }] }, granted: false, position: s.queue.length };
}

/** Let go of a slot (and of a place in the queue). */
export function release(s: KeyState, id: string): KeyState {
  return { ...s, leases: s.leases.filter((l) => l.id !== id), queue: s.queue.filter((w) => w.id !== id) };
}

/** Renew a held lease; undefined when it is not held (any more). */
export function renew(s: KeyState, id: string, now: number, ttlMs: number): KeyState | undefined {
  if (!s.leases.some((l) => l.id === id)) return undefined;
  return { ...s, leases: s.leases.map((l) => (l.id === id ? { ...l, expiresAt: now + ttlMs } : l)) };
}

/** The waiters that would get a slot now: the first `free` of the queue. */
export function admissible(s: KeyState, now: number): Waiter[] {
  const live = prune(s, now);
  return live.queue.slice(0, Math.max(0, live.limit - live.leases.length));
}

/**
 * A rate key: generic cell rate algorithm. `next` is the earliest time the
 * next start may happen (each start moves it on by 60000/perMinute ms);
 * `tokensNext` the earliest time after the tokens used so far are paid off
 * (each LLM call's tokens move it on by tokens × 60000/tokensPerMinute ms).
 * A start takes the later of both (or now): starts are spread evenly, in
 * the order they asked.
 */
export interface RateState { key: string; next: number; tokensNext: number }

export const emptyRate = (key: string): RateState => ({ key, next: 0, tokensNext: 0 });

/** Reserve a start: the time it may start, and the state after it. */
export function reserve(s: RateState, perMinute: number | undefined, now: number): { at: number; state: RateState } {
  const at = Math.max(now, s.next, s.tokensNext);
  return { at, state: perMinute ? { ...s, next: at + 60_000 / perMinute } : s };
}

/** Count tokens used against the key. */
export function spend(s: RateState, tokens: number, tokensPerMinute: number, now: number): RateState {
  return { ...s, tokensNext: Math.max(now, s.tokensNext) + (tokens * 60_000) / tokensPerMinute };
}
