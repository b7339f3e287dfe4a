/**
 * Run by every worker: follows the concurrency keys (a KV watch) and, for a
 * key with waiters, drops leases that expired (a worker died without letting
 * go) and wakes the waiters the free slots admit. Wakes of one round carry one
 * message id on every worker, so each is one command; a waiter still queued
 * in a later round (its wake was lost, or its worker died while admitting it)
 * is woken again.
 */
import type { Admission } from './admission.js';
import { admissible, type KeyState } from './slots.js';

/** Wakes of the same waiter within a round are one command. */
const ROUND_MS = 3000;

export class LeaseSweeper {
  private readonly keys = new Map<string, KeyState>();
  private watch?: { stop(): void };
  private timer?: NodeJS.Timeout;
  private sweeping = false;

  constructor(private readonly admission: Admission, private readonly options: { everyMs?: number; onError?: (err: unknown, context: string) => void } = {}) {}

  start(): void {
    this.watch = this.admission.store.watch((entry, state) => {
      if (!state || state.queue.length === 0) this.keys.delete(entry);
      else this.keys.set(entry, state);
    });
    this.timer = setInterval(() => void this.sweep(), this.options.everyMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    this.watch?.stop();
    clearInterval(this.timer);
  }

  private async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    try {
      const now = Date.now();
      for (const state of [...this.keys.values()]) {
        try {
          const expired = state.leases.some((l) => l.expiresAt <= now);
          const wake = expired ? (await this.admission.store.prune(state.key)).wake : admissible(state, now);
          await this.admission.wakeAll(state.key, wake, `t${Math.floor(now / ROUND_MS)}`);
        } catch (err) {
          this.options.onError?.(err, 'lease sweep');
        }
      }
    } finally {
      this.sweeping = false;
    }
  }
}
