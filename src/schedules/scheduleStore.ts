/**
 * Schedules in a KV bucket, one key per tenant and schedule id
 * (`s.<tenant>.<id>`). Every change is a compare-and-set on the entry's
 * revision: a scheduler claims a firing by moving the schedule's cursor past it,
 * so when several schedulers see the same firing exactly one claims it.
 */
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { jetstream, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { SmartSpecError } from '../errors.js';
import { isWrongLastSequence } from '../nats/compareAndSet.js';
import { kvKeys } from '../nats/kvKeys.js';
import { KvMirror } from '../nats/kvMirror.js';
import { SCHEDULES_BUCKET } from '../nats/names.js';
import type { Catchup, Timing } from './timing.js';

/** Schedule ids become KV key tokens and part of execution ids. */
export const SCHEDULE_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** The history keeps this many recent entries. */
export const HISTORY_LENGTH = 50;

export type HistoryKind = 'fired' | 'caught-up' | 'triggered' | 'skipped' | 'failed';

export interface HistoryEntry {
  kind: HistoryKind;
  /** ISO-8601: the firing's instant (for `skipped`, the first one left out). */
  at: string;
  /** ISO-8601: when the scheduler recorded it. */
  recordedAt: string;
  executionId?: string;
  /** `skipped`: how many firings, up to which instant, and the policy that skipped them, or the reason (a disabled workflow). */
  count?: number;
  until?: string;
  policy?: Catchup;
  reason?: string;
  /** `failed`: why the execution could not be started. */
  error?: string;
}

export interface Schedule extends Timing {
  id: string;
  tenant: string;
  workflowId: string;
  /** A pinned version; absent: the latest one at each firing. */
  version?: number;
  /** The interval as given (`15m`), beside its value in ms. */
  every?: string;
  input: unknown;
  catchup: Catchup;
  paused: boolean;
  createdAt: string;
  updatedAt: string;
  /** ISO-8601: every firing up to this instant has been dealt with (started or skipped). */
  cursorAt: string;
  history: HistoryEntry[];
}

export class ScheduleNotFoundError extends SmartSpecError {
  constructor(id: string) {
    super('SCHEDULE_NOT_FOUND', `schedule '${id}' not found`, { details: { scheduleId: id } });
  }
}

export class ScheduleExistsError extends SmartSpecError {
  constructor(id: string) {
    super('SCHEDULE_EXISTS', `schedule '${id}' already exists: delete it first, or choose another id`, { details: { scheduleId: id } });
  }
}

const keyOf = (tenant: string, id: string) => `s.${tenant}.${id}`;

export type ScheduleChange = { key: string; schedule: Schedule | undefined };

export class ScheduleStore {
  private constructor(private readonly kv: KV, private readonly js: JetStreamClient, private readonly nc: NatsConnection) {}

  static async open(nc: NatsConnection, replicas = 1): Promise<ScheduleStore> {
    return new ScheduleStore(await new Kvm(nc).create(SCHEDULES_BUCKET, { history: 1, storage: StorageType.File, replicas }), jetstream(nc), nc);
  }

  async create(schedule: Schedule): Promise<void> {
    try {
      await this.kv.create(keyOf(schedule.tenant, schedule.id), JSON.stringify(schedule));
    } catch (err) {
      if (await this.find(schedule.tenant, schedule.id)) throw new ScheduleExistsError(schedule.id);
      throw err;
    }
  }

  async find(tenant: string, id: string): Promise<Schedule | undefined> {
    return live(await this.kv.get(keyOf(tenant, id)));
  }

  async get(tenant: string, id: string): Promise<Schedule> {
    const s = await this.find(tenant, id);
    if (!s) throw new ScheduleNotFoundError(id);
    return s;
  }

  async list(tenant: string): Promise<Schedule[]> {
    const keys = await kvKeys(this.js, SCHEDULES_BUCKET, `s.${tenant}.*`);
    const all = await Promise.all(keys.map(async (k) => live(await this.kv.get(k))));
    return all.filter((s): s is Schedule => s !== undefined).sort((a, b) => a.id.localeCompare(b.id));
  }

  async remove(tenant: string, id: string): Promise<void> {
    await this.get(tenant, id);
    await this.kv.delete(keyOf(tenant, id));
  }

  /**
   * Change a schedule by compare-and-set: `change` sees the newest value and
   * returns the next one with a result, or undefined to leave it as it is. On a
   * concurrent write it runs again on the value that won.
   */
  async mutate<R>(tenant: string, id: string, change: (s: Schedule) => { next: Schedule; result: R } | undefined): Promise<R | undefined> {
    for (;;) {
      const entry = await this.kv.get(keyOf(tenant, id));
      const current = live(entry);
      if (!current) throw new ScheduleNotFoundError(id);
      const outcome = change(current);
      if (!outcome) return undefined;
      const next = { ...outcome.next, history: outcome.next.history.slice(-HISTORY_LENGTH) };
      try {
        await this.kv.update(keyOf(tenant, id), JSON.stringify(next), entry!.revision);
        return outcome.result;
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        // another scheduler or request changed it first: decide again on its value
      }
    }
  }

  /** Append entries to a schedule's history (an outcome known only after the claim). */
  async record(tenant: string, id: string, entries: HistoryEntry[]): Promise<void> {
    await this.mutate(tenant, id, (s) => ({ next: { ...s, history: [...s.history, ...entries] }, result: undefined }));
  }

  /** Every schedule, then every change, until `stop()`; across fail-overs too (KvMirror). */
  watch(onChange: (change: ScheduleChange) => void, stallCheckMs = 5000): { stop(): void } {
    const mirror = new KvMirror<Schedule>(this.kv, this.nc, { stallCheckMs, retryMs: 500, apply: (key, schedule) => onChange({ key, schedule }) });
    void mirror.start();
    return { stop: () => mirror.close() };
  }
}

function live(e: KvEntry | null): Schedule | undefined {
  return e && e.operation === 'PUT' ? e.json<Schedule>() : undefined;
}
