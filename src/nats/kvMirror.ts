/**
 * Following a KV bucket in memory: a watch that replays the current values,
 * then every change, handed to `apply` with its revision. A watch can end or,
 * across a NATS fail-over, go quiet without ending (and its iterator may not
 * even end when stopped); both are caught, the second by comparing what was
 * delivered with the bucket's last revision every `stallCheckMs`, and a fresh
 * watch replays the bucket's current values. Every store that follows a bucket
 * (execution index, API keys, timers, waits, schedules, triggers, leases) uses it.
 */
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

export interface KvMirrorOptions<T> {
  /** How often the watch is checked for having gone quiet while the bucket moved on. */
  stallCheckMs: number;
  /** Pause before watching again after the watch ended or failed. */
  retryMs: number;
  /** One entry as the bucket has it now: the value of a PUT, undefined for a delete or purge. */
  apply(key: string, value: T | undefined, revision: number): void;
}

/** Longest a sync waits for the watch to deliver the bucket's last revision. */
const SYNC_WAIT_MS = 2000;

export class KvMirror<T> {
  private watching?: Promise<void>;
  private ready!: () => void;
  /** Bumped to abandon a watch: its loop ends and whatever it still delivers is ignored. */
  private generation = 0;
  private current?: { stop(): void };
  /** The bucket's revision the watch has caught up with. */
  private seen = 0;
  private seenAtLastCheck = -1;
  private bucketAtLastCheck = 0;
  private stallCheck?: NodeJS.Timeout;
  private closed = false;
  /** This process's time when the last sync began: every change stored before it is applied. */
  private syncedAt = 0;
  private syncing?: Promise<void>;
  private caughtUp: { seq: number; resolve(): void }[] = [];

  constructor(private readonly kv: KV, private readonly nc: NatsConnection, private readonly options: KvMirrorOptions<T>) {}

  /** Whether `start` was called: writers then apply their own writes at once. */
  get started(): boolean {
    return this.watching !== undefined;
  }

  /** Start following the bucket; resolves once the current values are in. */
  start(): Promise<void> {
    if (this.watching) return this.watching;
    this.watching = new Promise((res) => (this.ready = res));
    void this.follow(this.generation);
    this.stallCheck = setInterval(() => void this.restartIfStalled(), this.options.stallCheckMs);
    this.stallCheck.unref();
    return this.watching;
  }

  /**
   * Resolves once every change stored in the bucket before `sinceMs` (this process's clock) has
   * been applied: the bucket's last revision is asked for, and the watch awaited up to it (at most
   * SYNC_WAIT_MS: a revision the watch never delivers must not hold a caller up for good).
   */
  async syncedTo(sinceMs: number): Promise<void> {
    while (this.syncedAt < sinceMs) {
      this.syncing ??= this.sync().finally(() => (this.syncing = undefined));
      await this.syncing;
    }
  }

  private async sync(): Promise<void> {
    const startedAt = Date.now();
    const last = (await this.kv.status()).streamInfo.state.last_seq;
    if (this.applied < last) {
      let timer: NodeJS.Timeout | undefined;
      let waiter!: { seq: number; resolve(): void };
      await new Promise<void>((resolve) => {
        this.caughtUp.push((waiter = { seq: last, resolve }));
        timer = setTimeout(resolve, SYNC_WAIT_MS);
      });
      clearTimeout(timer);
      this.caughtUp = this.caughtUp.filter((w) => w !== waiter); // timed out: not left waiting
    }
    this.syncedAt = startedAt;
  }

  /** The bucket's revision whose changes are all applied (a new watch's replay counts once it is done). */
  private applied = 0;

  private appliedUpTo(revision: number): void {
    this.applied = Math.max(this.applied, revision);
    if (this.caughtUp.length === 0) return;
    const waiting = this.caughtUp;
    this.caughtUp = waiting.filter((w) => w.seq > this.applied);
    for (const w of waiting) if (w.seq <= this.applied) w.resolve();
  }

  /** Stop the watch (it would otherwise restart). */
  close(): void {
    this.closed = true;
    clearInterval(this.stallCheck);
    this.current?.stop();
  }

  private async follow(generation: number): Promise<void> {
    const live = () => generation === this.generation && !this.closed && !this.nc.isClosed();
    while (live()) {
      try {
        // A new watch replays the bucket as it is now: it has caught up with everything stored so far
        // (deletions whose markers were purged are never delivered, so they must not count as missing).
        const bucket = await this.kv.status();
        const iter = await this.kv.watch();
        if (!live()) return iter.stop();
        this.current = iter;
        const replayed = bucket.streamInfo.state.last_seq;
        this.seen = Math.max(this.seen, replayed);
        if (bucket.values === 0) { // an empty bucket sends no entry
          this.appliedUpTo(replayed);
          this.ready();
        }
        for await (const e of iter) {
          if (!live()) break;
          this.seen = Math.max(this.seen, e.revision);
          this.options.apply(e.key, e.operation === 'PUT' ? (e.json() as T) : undefined, e.revision);
          this.appliedUpTo(e.revision);
          if (e.delta === 0) {
            this.appliedUpTo(replayed); // the replay is done: everything stored when it began is in
            this.ready();
          }
        }
      } catch {
        // connection trouble: watch again (it replays the current values)
      }
      await new Promise((r) => setTimeout(r, this.options.retryMs).unref());
    }
  }

  /**
   * Changes already stored at the previous check, still not delivered, and nothing delivered
   * since: abandon that watch for a new one. (A change stored just before a check is not yet
   * overdue.)
   */
  private async restartIfStalled(): Promise<void> {
    const last = await this.kv.status().then((s) => s.streamInfo.state.last_seq, () => undefined);
    if (last === undefined) return;
    const stalled = this.bucketAtLastCheck > this.seen && this.seen === this.seenAtLastCheck;
    this.seenAtLastCheck = this.seen;
    this.bucketAtLastCheck = last;
    if (!stalled || this.closed) return;
    this.current?.stop();
    void this.follow(++this.generation);
  }
}
