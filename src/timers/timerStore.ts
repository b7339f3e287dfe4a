/**
 * Pending step timers in a KV bucket (file storage), one key per execution,
 * step and attempt, holding the time it is due. A runner arms a timer before
 * it records the step's start and disarms it when that attempt stops waiting;
 * every worker watches the bucket (TimerWatcher), so a timer fires whether its
 * execution is hosted, passivated, or its worker died. The log stays the truth:
 * a timer that no longer applies is refused by the machine and removed.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { KvMirror } from '../nats/kvMirror.js';
import { TIMERS_BUCKET } from '../nats/names.js';

export interface TimerRef { executionId: string; stepId: string; attempt: number }
export interface TimerEntry extends TimerRef {
  /** ISO-8601: when it is due (the step's recorded `wakeAt` or `deadline`). */
  at: string;
}

/** How long arming a timer keeps trying through a NATS outage (as long as an append does). */
const ARM_TIMEOUT_MS = 30_000;

/** Execution ids and step ids are kept to letters, digits, _ and -: safe as KV key tokens. */
export const timerKey = (t: TimerRef) => `${t.executionId}.${t.stepId}.${t.attempt}`;

export type TimerChange = { key: string; entry: TimerEntry | undefined };

export class TimerStore {
  private constructor(private readonly kv: KV, private readonly nc: NatsConnection) {}

  static async open(nc: NatsConnection, replicas = 1): Promise<TimerStore> {
    return new TimerStore(await new Kvm(nc).create(TIMERS_BUCKET, { history: 1, storage: StorageType.File, replicas }), nc);
  }

  /**
   * Kept through a NATS fail-over (the bucket's leader re-elected), as appends to the log are:
   * a refused arm stops the runner, and whoever continues the execution runs its steps in
   * flight again, once per refusal until the bucket has a leader again.
   */
  async arm(entry: TimerEntry): Promise<void> {
    const deadline = Date.now() + ARM_TIMEOUT_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.kv.put(timerKey(entry), JSON.stringify(entry));
        return;
      } catch (err) {
        if (Date.now() > deadline || this.nc.isClosed()) throw err;
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempt)));
      }
    }
  }

  async disarm(ref: TimerRef): Promise<void> {
    await this.kv.delete(timerKey(ref));
  }

  /**
   * Remove a timer found spent, unless it has been armed again meanwhile (a resumed
   * execution starting the same step and attempt anew): only the entry due at `at` goes.
   */
  async disarmSpent(entry: TimerEntry): Promise<void> {
    const e = await this.kv.get(timerKey(entry));
    if (!e || e.operation !== 'PUT' || e.json<TimerEntry>().at !== entry.at) return;
    await this.kv.delete(timerKey(entry), { previousSeq: e.revision }).catch(() => undefined); // changed meanwhile: keep it
  }

  /** Drop the markers deleted timers leave behind, once every watcher has long seen them. */
  async purgeDeleted(olderThanMs: number): Promise<void> {
    // On the bucket the KV manager returns, not on its KV interface.
    await (this.kv as KV & { purgeDeletes(olderMillis: number): Promise<unknown> }).purgeDeletes(olderThanMs);
  }

  /** Every pending timer, then every change, until `stop()`; across fail-overs too (KvMirror). */
  watch(onChange: (change: TimerChange) => void, stallCheckMs = 5000): { stop(): void } {
    const mirror = new KvMirror<TimerEntry>(this.kv, this.nc, { stallCheckMs, retryMs: 500, apply: (key, entry) => onChange({ key, entry }) });
    void mirror.start();
    return { stop: () => mirror.close() };
  }
}
