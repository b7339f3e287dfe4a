/**
 * Run by every worker: keeps a local timer for each pending step timer in the
 * TimerStore and, when one is due, publishes a `smartspec.cmd.timer` command.
 * All workers publish it with the same message id, so JetStream stores it once
 * and one worker carries it out. While the timer is still pending afterwards
 * (the command was lost, or its worker died), it is published again every
 * `refireMs`, under a new id each round.
 */
import type { CommandBus } from '../bus/commands.js';
import { setLongTimeout } from '../worker/stepTimers.js';
import type { TimerEntry, TimerStore } from './timerStore.js';

export interface TimerWatcherOptions {
  /** How often a timer that is still pending after it fired is fired again. */
  refireMs?: number;
  onError?: (err: unknown, context: string) => void;
}

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

  /** Round n fires at the due time plus n × refireMs: every worker computes the same rounds, so their ids match. */
  private schedule(key: string, entry: TimerEntry, round: number): void {
    const refireMs = this.options.refireMs ?? 30_000;
    const due = Date.parse(entry.at);
    // A timer found long overdue (all workers were down) starts at the round it is in.
    const now = Date.now();
    const r = Math.max(round, now > due ? Math.floor((now - due) / refireMs) : 0);
    const cancel = setLongTimeout(() => {
      const { executionId, stepId, attempt, at } = entry;
      this.bus
        .publish('timer', { executionId, stepId, attempt, at }, `timer:${key}:${r}`)
        .catch((err) => this.options.onError?.(err, 'timer command publish'));
      if (this.pending.get(key) === cancel) this.schedule(key, entry, r + 1);
    }, due + r * refireMs - now);
    this.pending.set(key, cancel);
  }
}
