/**
 * Run by every worker: keeps a local timer for each pending step timer in the
 * TimerStore and, when one is due, publishes a `smartspec.cmd.timer` command.
 * All workers publish it with the same message id, so JetStream stores it once
 * and one worker carries it out. While the timer is still pending afterwards
 * it is published again, under a new id each round: soon at first (a command
 * handed to a worker that has just died waits out the ack wait; after a
 * SIGKILL, nats-server 2.9 may still hand messages to the dead worker's
 * pending pull for a few seconds), then every `refireMs`.
 */
import type { CommandBus } from '../bus/commands.js';
import { setLongTimeout } from '../worker/stepTimers.js';
import type { TimerEntry, TimerStore } from './timerStore.js';

export interface TimerWatcherOptions {
  /** How often a timer that is still pending after its first rounds is fired again. */
  refireMs?: number;
  onError?: (err: unknown, context: string) => void;
}

/** When the first rounds fire, after the due time; later rounds every refireMs. */
const FIRST_ROUNDS_MS = [0, 500, 1500, 5000];

/** Deletion markers older than this are purged (every watcher has seen them by then). */
const PURGE_DELETED_AFTER_MS = 30 * 60_000;

export class TimerWatcher {
  private readonly pending = new Map<string, () => void>();
  private watch?: { stop(): void };
  private purge?: NodeJS.Timeout;

  constructor(private readonly store: TimerStore, private readonly bus: CommandBus, private readonly options: TimerWatcherOptions = {}) {}

  start(): void {
    this.watch = this.store.watch(({ key, entry }) => {
      this.pending.get(key)?.();
      this.pending.delete(key);
      if (entry) this.schedule(key, entry, 0);
    });
    this.purge = setInterval(() => this.store.purgeDeleted(PURGE_DELETED_AFTER_MS).catch((err) => this.options.onError?.(err, 'timer purge')), PURGE_DELETED_AFTER_MS);
    this.purge.unref();
  }

  stop(): void {
    this.watch?.stop();
    clearInterval(this.purge);
    for (const cancel of this.pending.values()) cancel();
    this.pending.clear();
  }

  /** Round n fires at the same offset from the due time on every worker, so their message ids match. */
  private roundOffset(round: number): number {
    const refireMs = this.options.refireMs ?? 30_000;
    const last = FIRST_ROUNDS_MS.length - 1;
    return round <= last ? FIRST_ROUNDS_MS[round] : FIRST_ROUNDS_MS[last] + (round - last) * refireMs;
  }

  private schedule(key: string, entry: TimerEntry, round: number): void {
    const due = Date.parse(entry.at);
    // A timer found overdue (all workers were down, or this one just started) fires now, in the round it is in.
    const now = Date.now();
    let r = round;
    while (due + this.roundOffset(r + 1) <= now) r++;
    const cancel = setLongTimeout(() => {
      const { executionId, stepId, attempt, at } = entry;
      this.bus
        .publish('timer', { executionId, stepId, attempt, at }, `timer:${key}:${r}`)
        .catch((err) => this.options.onError?.(err, 'timer command publish'));
      if (this.pending.get(key) === cancel) this.schedule(key, entry, r + 1);
    }, due + this.roundOffset(r) - now);
    this.pending.set(key, cancel);
  }
}
