/**
 * Retention: purge what is kept of executions that ended (COMPLETED, FAILED,
 * CANCELLED) longer ago than a duration — their history in the event log
 * (purged by subject), their execution-index entry, their snapshots, and
 * their large payloads in the object store. An execution that has not ended
 * (PENDING, RUNNING, WAITING) is never purged: what counts is its last
 * record, read from the log itself, not the index (which may lag).
 */
import { JetStreamApiError, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { LogRecord } from '../log/records.js';
import { EXECUTION_INDEX_BUCKET, SNAPSHOTS_BUCKET } from '../nats/names.js';
import { Partitions } from '../nats/partitions.js';
import { ObjectPurger } from './objects.js';

const ENDED = new Set(['ExecutionCompleted', 'ExecutionFailed', 'ExecutionCancelled']);
const STATUS: Record<string, string> = { ExecutionCompleted: 'COMPLETED', ExecutionFailed: 'FAILED', ExecutionCancelled: 'CANCELLED' };
const STREAM_NOT_FOUND = 10059;
const NO_MESSAGE = 10037;

export interface PurgeOptions {
  /** Executions that ended longer ago than this are purged. */
  olderThanMs: number;
  /** List what would be purged, purge nothing. */
  dryRun?: boolean;
  now?: Date;
  /** Told about each execution as it is purged (or, in a dry run, found). */
  onPurged?: (p: PurgedExecution) => void;
  /** Which streams hold the log (default NATS_PARTITIONS, else 1). */
  partitions?: Partitions;
}

export interface PurgedExecution {
  executionId: string;
  status: string;
  endedAt: string;
  /** Records of its history removed from the event log. */
  records: number;
}

export interface PurgeReport {
  cutoff: string;
  dryRun: boolean;
  purged: PurgedExecution[];
  /** Executions looked at that are kept (not ended, or ended too recently). */
  kept: number;
}

export async function purgeEndedExecutions(nc: NatsConnection, options: PurgeOptions): Promise<PurgeReport> {
  const jsm = await jetstreamManager(nc);
  const cutoff = new Date((options.now ?? new Date()).getTime() - options.olderThanMs);
  const report: PurgeReport = { cutoff: cutoff.toISOString(), dryRun: options.dryRun === true, purged: [], kept: 0 };
  const partitions = options.partitions ?? Partitions.fromEnv();
  const index = await openBucket(nc, jsm, EXECUTION_INDEX_BUCKET);
  const objects = new ObjectPurger(jsm);
  for (const [stream, subject, count] of await historySubjects(jsm, partitions)) {
    const executionId = partitions.executionIdOf(subject);
    const last = await lastRecord(jsm, stream, subject);
    if (!last || !ENDED.has(last.record.type) || !(Date.parse(last.record.at) <= cutoff.getTime())) {
      report.kept++;
      continue;
    }
    const purged: PurgedExecution = { executionId, status: STATUS[last.record.type], endedAt: last.record.at, records: count };
    if (!options.dryRun) {
      // Up to its last record only: a record appended since (a resume, just now) stays, and says so.
      await jsm.streams.purge(stream, { filter: subject, seq: last.seq + 1 });
      await index?.purge(executionId);
      await purgeSubject(jsm, `KV_${SNAPSHOTS_BUCKET}`, `$KV.${SNAPSHOTS_BUCKET}.${executionId}.>`);
      await objects.purge(executionId);
    }
    report.purged.push(purged);
    options.onPurged?.(purged);
  }
  // The index's deletion markers, once old enough that every watcher has seen them.
  // (The bucket object has purgeDeletes; the KV interface does not declare it.)
  const bucket = index as (KV & { purgeDeletes?: () => Promise<unknown> }) | undefined;
  if (!options.dryRun && report.purged.length > 0) await bucket?.purgeDeletes?.().catch(() => undefined);
  return report;
}

/** Every execution's subject in the event log (each partition's stream), with its number of records. */
async function historySubjects(jsm: JetStreamManager, partitions: Partitions): Promise<[string, string, number][]> {
  const out: [string, string, number][] = [];
  for (const k of partitions.all()) {
    const stream = partitions.executionStream(k);
    try {
      const info = await jsm.streams.info(stream, { subjects_filter: partitions.executionSubjects(k)[0] });
      for (const [subject, count] of Object.entries(info.state.subjects ?? {})) out.push([stream, subject, count]);
    } catch (err) {
      if (!(err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND)) throw err;
    }
  }
  return out;
}

async function lastRecord(jsm: JetStreamManager, stream: string, subject: string): Promise<{ seq: number; record: LogRecord } | undefined> {
  try {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    return m ? { seq: m.seq, record: m.json<LogRecord>() } : undefined;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === NO_MESSAGE) return undefined;
    throw err;
  }
}

/** The bucket, if it exists (the CLI alone never creates the index): opening one does not check. */
async function openBucket(nc: NatsConnection, jsm: JetStreamManager, bucket: string): Promise<KV | undefined> {
  try {
    await jsm.streams.info(`KV_${bucket}`);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND) return undefined;
    throw err;
  }
  return new Kvm(nc).open(bucket);
}

/** Purge a subject (or wildcard) from a stream; a stream that does not exist has nothing to purge. */
export async function purgeSubject(jsm: JetStreamManager, stream: string, filter: string): Promise<number> {
  try {
    return (await jsm.streams.purge(stream, { filter })).purged;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND) return 0;
    throw err;
  }
}
