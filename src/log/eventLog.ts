/**
 * The event log on JetStream: stream SMARTSPEC_EXECUTIONS (or, with
 * NATS_PARTITIONS=N, one of N streams: src/nats/partitions.ts), one subject per
 * execution. Appends carry the expected-last-subject-sequence check, so two
 * writers can never interleave one execution's history, and a message id, so
 * a retried publish (after a timeout or reconnect) is not written twice.
 */
import { randomUUID } from 'node:crypto';
import { AckPolicy, DeliverPolicy, DiscardPolicy, type MsgRequest, JetStreamApiError, jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { ConcurrencyError, MessageTooLargeError, SmartSpecError } from '../errors.js';
import { assertPartitions, Partitions } from '../nats/partitions.js';
import { sealRecord, type LogRecord, type StoredRecord } from './records.js';
import { Appender, PublishRejected } from './appender.js';
import { applyStreamLimits, isStreamFull, LogFullError, streamLimitError } from './streamLimits.js';
import { limits } from '../limits.js';
import { RecentHistories } from './recentHistories.js';

const WRONG_LAST_SEQUENCE = 10071;
/** Room for an append's headers (message id, expected sequence), which count against max_payload. */
const HEADERS_BYTES = 512;
/** The stream's max_msg_size refused the message. */
const MESSAGE_TOO_LARGE = 10054;
/** How long a read waits for its consumer's first records before it reads by stream gets. */
const CONSUMER_STALL_MS = 750;
/** Most records one pull of a read asks for. */
const FETCH_BATCH = 1024;
/** How long a read waits for the index to say where a history starts before it reads from the start. */
const START_HINT_MS = 250;
/** How long the server keeps a read's consumer that nobody pulls from (its reader is gone without deleting it). */
const READ_CONSUMER_IDLE_MS = 30_000;
/** Default writer id: one per process (runners pass their own). */
const WRITER = randomUUID();
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export interface LogPosition { seq: number; hash: string }

export interface EventLogOptions {
  /** Stream replicas (3 on a cluster). */
  replicas?: number;
  /** How long an append keeps retrying through a NATS outage before giving up. */
  appendTimeoutMs?: number;
  /**
   * Where an execution's history starts in the stream, if known (the execution index keeps it).
   * A read from the start otherwise makes nats-server look for the subject's first message
   * block by block: tens of ms on a large stream, against a few ms from a known sequence.
   */
  startOf?: (executionId: string) => Promise<number | undefined>;
  /**
   * Most bytes the log may hold (default SMARTSPEC_STREAM_MAX_BYTES); appends beyond are refused
   * (LOG_FULL). With partitions, each stream holds an equal share.
   */
  maxBytes?: number;
  /** How many streams the log is spread over (default NATS_PARTITIONS, else 1). */
  partitions?: Partitions;
}

export class EventLog {
  private constructor(
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    private readonly appender: Appender,
    private readonly appendTimeoutMs: number,
    private readonly startOf: EventLogOptions['startOf'],
    /** Which stream holds which execution: every read and write asks it. */
    readonly partitions: Partitions,
  ) {}

  /** Histories written here lately: a read up to a known last record is served from them. */
  private readonly recent = new RecentHistories();

  static async open(nc: NatsConnection, options: EventLogOptions = {}): Promise<EventLog> {
    const jsm = await jetstreamManager(nc);
    const partitions = options.partitions ?? Partitions.fromEnv();
    await assertPartitions(jsm, partitions);
    const bounds = { maxBytes: Math.floor((options.maxBytes ?? limits().streamMaxBytes) / partitions.count) };
    for (const k of partitions.all()) {
      const name = partitions.executionStream(k);
      const description = partitions.describe('event log', k);
      try {
        await ensureStream(jsm, {
          name,
          subjects: partitions.executionSubjects(k),
          ...(description ? { description } : {}),
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          num_replicas: options.replicas ?? 1,
          duplicate_window: 120_000_000_000, // 2 min, in ns
          max_bytes: bounds.maxBytes,
          discard: DiscardPolicy.New,
        });
      } catch (err) {
        // A size the server cannot reserve (more than its JetStream store): say which setting.
        throw err instanceof JetStreamApiError && /insufficient|bytes/i.test(err.message) ? streamLimitError(name, bounds, err) : err;
      }
      await applyStreamLimits(jsm, name, bounds);
    }
    return new EventLog(jetstream(nc), jsm, new Appender(nc), options.appendTimeoutMs ?? 30_000, options.startOf, partitions);
  }

  /**
   * Append one record after `prev` (null for the first record of an execution).
   * Throws ConcurrencyError when another writer appended first.
   */
  async append(body: Omit<LogRecord, 'hash'>, prev: LogPosition | null, writer: string = WRITER): Promise<StoredRecord> {
    const { hash, json } = sealRecord(prev?.hash ?? '', body);
    const record = { hash, ...body } as LogRecord; // hash first: see ExecutionRunner.append
    const data = encoder.encode(json);
    const subject = this.partitions.executionSubject(record.executionId);
    // Refused as too large, a record would be refused again on every retry: say so now, not after the deadline.
    const maxPayload = this.appender.maxPayload;
    if (maxPayload !== undefined && data.length + HEADERS_BYTES > maxPayload) throw recordTooLarge(record, data.length, maxPayload);
    const deadline = Date.now() + this.appendTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      try {
        // The message id names the writer too: two writers with byte-identical records
        // must not pass for one (the server checks ids before the expected sequence).
        const ack = await this.appender.publish(subject, data, `${hash}:${writer}`, prev?.seq ?? 0);
        if (ack.duplicate && attempt === 1) throw new ConcurrencyError(record.executionId, prev?.seq ?? 0);
        this.recent.appended(record.executionId, prev?.seq ?? 0, ack.seq, data, record.type);
        return { seq: ack.seq, record };
      } catch (err) {
        if (err instanceof ConcurrencyError) throw err;
        if (err instanceof PublishRejected && err.errCode === WRONG_LAST_SEQUENCE) {
          throw new ConcurrencyError(record.executionId, prev?.seq ?? 0, err);
        }
        if ((err instanceof PublishRejected && err.errCode === MESSAGE_TOO_LARGE) || /max_payload/.test((err as Error).message)) throw recordTooLarge(record, data.length);
        if (err instanceof PublishRejected && isStreamFull(err.message)) throw new LogFullError(record.executionId, err);
        // Any other refusal is taken for the cluster's (no leader, no quorum, "temporarily unavailable" while a
        // node fails over) and tried again: taken as final, it refused the record for good (a suspect for a
        // start command acknowledged with no execution recorded, seen once in the fail-over test).
        // Timeouts and outages: publish again with the same message id; if the first
        // one was stored, the server answers with that (duplicate) ack.
        if (Date.now() > deadline) {
          throw new SmartSpecError('LOG_UNAVAILABLE', `could not append to the event log of ${record.executionId}: ${(err as Error).message}`, { retryable: true, cause: err });
        }
        await sleep(Math.min(1000, 50 * attempt));
      }
    }
  }

  /** The newest record of an execution, or null when it has none. */
  async last(executionId: string): Promise<StoredRecord | null> {
    try {
      const m = await this.jsm.streams.getMessage(this.partitions.executionStreamOf(executionId), { last_by_subj: this.partitions.executionSubject(executionId) });
      return m ? { seq: m.seq, record: m.json<LogRecord>() } : null;
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10037) return null; // no message found
      throw err;
    }
  }

  /** The first record of an execution (one stream get), or null when it has none. */
  async first(executionId: string): Promise<StoredRecord | null> {
    try {
      // The server (2.9+) takes next_by_subj on STREAM.MSG.GET; the client's type lists it for direct gets only.
      const m = await this.jsm.streams.getMessage(this.partitions.executionStreamOf(executionId), { next_by_subj: this.partitions.executionSubject(executionId), seq: 1 } as unknown as MsgRequest);
      return m ? { seq: m.seq, record: m.json<LogRecord>() } : null;
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10037) return null;
      throw err;
    }
  }

  /**
   * The history of an execution from `fromSeq` (to `toSeq`, default its newest record), in order.
   * `start`: the start hint, when the caller has already asked for it (startSeq).
   */
  async read(executionId: string, fromSeq = 0, toSeq?: number, start?: number): Promise<StoredRecord[]> {
    // Up to a last record the caller has from the log: what this process wrote lately will do.
    const kept = toSeq === undefined ? undefined : this.recent.range(executionId, fromSeq, toSeq);
    if (kept) return kept;
    if (fromSeq === 0) start ??= await this.startSeq(executionId);
    if (fromSeq === 0 && start) {
      const out = await this.readRange(executionId, start, toSeq);
      // A hint that does not land on the first record (a re-created stream, say) is not trusted.
      if (out.length > 0 && out[0].record.type === 'ExecutionStarted') return out;
    }
    return this.readRange(executionId, fromSeq, toSeq);
  }

  /**
   * Where the history starts in the stream, if the index says so quickly (an index lost in a NATS
   * fail-over must not hold reads up). A hint: read() checks it lands on ExecutionStarted.
   */
  async startSeq(executionId: string): Promise<number | undefined> {
    // A history this process wrote from its start: the index may not have the start yet (its first
    // status write waits for the next one), and without it a resume took a short history for a long one.
    const kept = this.recent.startSeq(executionId);
    if (kept !== undefined) return kept;
    if (!this.startOf) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), START_HINT_MS)));
    try {
      return await Promise.race([this.startOf!(executionId).catch(() => undefined), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async readRange(executionId: string, fromSeq: number, toSeq?: number): Promise<StoredRecord[]> {
    const end = toSeq ?? (await this.last(executionId))?.seq;
    if (end === undefined || end < fromSeq) return [];
    // A consumer streams a long history fast. On a cluster that lost a node it can be placed on
    // the dead one and never answer: then read record by record from the stream leader.
    const abort = new AbortController();
    const out: StoredRecord[] = [];
    let firstSeen!: () => void;
    const first = new Promise<void>((res) => (firstSeen = res));
    const streamed = (async () => {
      for await (const r of this.batch(executionId, fromSeq, abort.signal)) {
        firstSeen();
        if (abort.signal.aborted || r.seq > end) break;
        out.push(r);
        if (r.seq === end) break;
      }
      return true;
    })();
    streamed.catch(() => undefined).finally(() => firstSeen());
    // Only the first record has a deadline: a long history may take its time once it flows.
    let timer: NodeJS.Timeout | undefined;
    const stalled = await Promise.race([first.then(() => false), new Promise<boolean>((res) => (timer = setTimeout(() => res(true), CONSUMER_STALL_MS)))]);
    clearTimeout(timer);
    if (!stalled) {
      const ok = await streamed.catch(() => false);
      if (ok && out.length > 0 && out[out.length - 1].seq === end) return out;
    }
    abort.abort();
    return this.readByGet(executionId, out.length ? out[out.length - 1].seq + 1 : fromSeq, end, out);
  }

  /**
   * The records from `fromSeq` up to the newest, through a consumer created for the read and
   * deleted after it: two requests (create, pull). An ordered consumer, as `follow` uses, costs a
   * stream info request more and its reset machinery, which a bounded read does not need.
   */
  private async *batch(executionId: string, fromSeq: number, signal: AbortSignal): AsyncGenerator<StoredRecord> {
    const stream = this.partitions.executionStreamOf(executionId);
    const info = await this.jsm.consumers.add(stream, {
      filter_subject: this.partitions.executionSubject(executionId), // nats-server 2.9 has no filter_subjects
      ...(fromSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq } : { deliver_policy: DeliverPolicy.All }),
      ack_policy: AckPolicy.None,
      mem_storage: true,
      num_replicas: 1,
      // The server's own clean-up, for a reader that could not delete its consumer (a lost connection).
      inactive_threshold: nanos(READ_CONSUMER_IDLE_MS),
    });
    try {
      const consumer = this.js.consumers.getConsumerFromInfo(info);
      // Pulls of what is pending (at most a batch each), until nothing is.
      for (let pending = info.num_pending; pending > 0 && !signal.aborted; ) {
        const messages = await consumer.fetch({ max_messages: Math.min(pending, FETCH_BATCH), expires: CONSUMER_STALL_MS * 4 });
        const stop = () => void messages.stop();
        signal.addEventListener('abort', stop, { once: true });
        try {
          for await (const m of messages) {
            yield { seq: m.seq, record: JSON.parse(decoder.decode(m.data)) as LogRecord };
            pending = m.info.pending;
          }
        } finally {
          signal.removeEventListener('abort', stop);
        }
      }
    } finally {
      // Not awaited: the records are all here, and the reader need not wait a round trip more.
      void this.jsm.consumers.delete(stream, info.name).catch(() => undefined);
    }
  }

  /** One stream get per record (`next_by_subj`): slower, but served by whichever node leads the stream. */
  private async readByGet(executionId: string, fromSeq: number, end: number, out: StoredRecord[]): Promise<StoredRecord[]> {
    const subject = this.partitions.executionSubject(executionId);
    const stream = this.partitions.executionStreamOf(executionId);
    for (let seq = Math.max(fromSeq, 1); seq <= end; ) {
      // The server (2.9+) takes next_by_subj on STREAM.MSG.GET; the client's type lists it for direct gets only.
      const m = await this.jsm.streams.getMessage(stream, { next_by_subj: subject, seq } as unknown as MsgRequest);
      if (!m || m.seq > end) break;
      out.push({ seq: m.seq, record: m.json<LogRecord>() });
      seq = m.seq + 1;
    }
    return out;
  }

  /**
   * Records as they arrive: the history first, then live, until the caller stops (breaks out,
   * or aborts `signal`). The consumer is deleted then: left alone it would stay on the server
   * for its inactivity threshold.
   */
  async *follow(executionId: string, fromSeq = 0, signal?: AbortSignal): AsyncGenerator<StoredRecord> {
    if (signal?.aborted) return;
    const consumer = await this.js.consumers.get(this.partitions.executionStreamOf(executionId), {
      filter_subjects: this.partitions.executionSubject(executionId), // a string: nats-server 2.9 has no filter_subjects
      ...(fromSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq } : { deliver_policy: DeliverPolicy.All }),
      // The server's own clean-up, for a reader that could not delete its consumer (a lost connection).
      inactive_threshold: READ_CONSUMER_IDLE_MS,
    });
    try {
      if (signal?.aborted) return; // the caller gave up while the consumer was being created
      const messages = await consumer.consume({ max_messages: 1024 });
      const stop = () => void messages.stop();
      signal?.addEventListener('abort', stop, { once: true });
      try {
        for await (const m of messages) {
          yield { seq: m.seq, record: JSON.parse(decoder.decode(m.data)) as LogRecord };
        }
      } finally {
        signal?.removeEventListener('abort', stop);
        await messages.close().catch(() => undefined);
      }
    } finally {
      // Not awaited: the records are all here, and the reader need not wait a round trip more.
      void consumer.delete().catch(() => undefined);
    }
  }
}

function recordTooLarge(record: LogRecord, bytes: number, maxBytes?: number): MessageTooLargeError {
  const limit = maxBytes === undefined ? 'the stream\'s maximum message size' : `NATS's max_payload of ${maxBytes} bytes`;
  return new MessageTooLargeError('RECORD_TOO_LARGE', `the ${record.type} record of ${record.executionId} is ${bytes} bytes, over ${limit}`, { bytes, ...(maxBytes !== undefined ? { maxBytes } : {}) });
}

/** Create a stream, or leave an existing one as it is. */
export async function ensureStream(jsm: JetStreamManager, config: Parameters<JetStreamManager['streams']['add']>[0]): Promise<void> {
  try {
    await jsm.streams.info(config.name!);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== 10059) throw err; // 10059: stream not found
    try {
      await jsm.streams.add(config);
    } catch (e) {
      if (!(e instanceof JetStreamApiError) || e.code !== 10058) throw e; // created meanwhile
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
