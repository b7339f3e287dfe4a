/**
 * Run by every worker: mirrors the schedules bucket and, a few times a second,
 * claims the firings that are due (a compare-and-set moving the schedule's
 * cursor, so one scheduler wins each firing) and starts their executions.
 * Firings missed while every scheduler was down follow the schedule's
 * `catchup` policy; what was started, caught up or skipped goes into the
 * schedule's history.
 */
import type { FiringStarter } from './firing.js';
import { firingExecutionId } from './firing.js';
import type { HistoryEntry, Schedule, ScheduleStore } from './scheduleStore.js';
import { ScheduleNotFoundError } from './scheduleStore.js';
import { plan, type Plan } from './timing.js';

export interface SchedulerOptions {
  /** How often due firings are looked for. */
  tickMs?: number;
  /** The clock (tests move it). */
  now?: () => number;
  onError?: (err: unknown, context: string) => void;
}

export class Scheduler {
  private readonly schedules = new Map<string, Schedule>();
  private watch?: { stop(): void };
  private timer?: NodeJS.Timeout;
  private ticking = false;

  constructor(private readonly store: ScheduleStore, private readonly starter: FiringStarter, private readonly options: SchedulerOptions = {}) {}

  start(): void {
    this.watch = this.store.watch(({ key, schedule }) => {
      if (schedule) this.schedules.set(key, schedule);
      else this.schedules.delete(key);
    });
    this.timer = setInterval(() => void this.tick(), this.options.tickMs ?? 250);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.watch?.stop();
  }

  /** One look: every active schedule with a firing due is claimed and started (one round at a time). */
  async tick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const now = (this.options.now ?? Date.now)();
      const due = [...this.schedules.values()].filter((s) => !s.paused && plan(s, Date.parse(s.cursorAt), now, s.catchup));
      await Promise.all(due.map((s) => this.fire(s, now).catch((err) => this.options.onError?.(err, `schedule ${s.id}`))));
    } finally {
      this.ticking = false;
    }
  }

  private async fire(seen: Schedule, now: number): Promise<void> {
    const recordedAt = new Date(now).toISOString();
    // A disabled (or deleted) workflow: its firings are claimed as skipped, with the reason, and start nothing.
    const refusal = await this.starter.refusal(seen);
    let claimed: { plan: Plan; schedule: Schedule } | undefined;
    try {
      // Decided again on the newest value: a firing another scheduler claimed is no longer due.
      claimed = await this.store.mutate(seen.tenant, seen.id, (s) => {
        const p = s.paused ? undefined : plan(s, Date.parse(s.cursorAt), now, s.catchup);
        if (!p) return undefined;
        let history = [...s.history];
        if (p.skipped) history.push({ kind: 'skipped', at: iso(p.skipped.first), until: iso(p.skipped.last), count: p.skipped.count, policy: s.catchup, recordedAt });
        if (refusal) history = refused(history, p, refusal, recordedAt);
        else history.push(...p.fire.map(({ at, late }): HistoryEntry => ({ kind: late ? 'caught-up' : 'fired', at: iso(at), recordedAt, executionId: firingExecutionId(s.id, at) })));
        return { next: { ...s, cursorAt: iso(p.cursor), history }, result: { plan: p, schedule: s } };
      });
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) return; // deleted meanwhile
      throw err;
    }
    if (!claimed || refusal) return;
    const { schedule } = claimed;
    const failures: HistoryEntry[] = [];
    for (const { at } of claimed.plan.fire) {
      try {
        await this.starter.start(schedule, at);
      } catch (err) {
        failures.push({ kind: 'failed', at: iso(at), recordedAt, executionId: firingExecutionId(schedule.id, at), error: (err as Error).message });
      }
    }
    if (failures.length > 0) await this.store.record(schedule.tenant, schedule.id, failures).catch((err) => this.options.onError?.(err, `schedule ${schedule.id} history`));
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The history with the plan's firings skipped for `reason`: a run of firings skipped for the same
 * reason is one entry whose count grows, so a disabled workflow's every-second schedule keeps its history.
 */
function refused(history: HistoryEntry[], p: Plan, reason: string, recordedAt: string): HistoryEntry[] {
  if (p.fire.length === 0) return history;
  const first = iso(p.fire[0].at);
  const until = iso(p.fire[p.fire.length - 1].at);
  const last = history[history.length - 1];
  if (last?.kind === 'skipped' && last.reason === reason) return [...history.slice(0, -1), { ...last, until, count: (last.count ?? 1) + p.fire.length, recordedAt }];
  return [...history, { kind: 'skipped', at: first, until, count: p.fire.length, reason, recordedAt }];
}
