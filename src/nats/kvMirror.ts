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
        this.seen = Math.max(this.seen, bucket.streamInfo.state.last_seq);
        if (bucket.values === 0) this.ready(); // an empty bucket sends no entry
        for await (const e of iter) {
          if (!live()) break;
          this.seen = Math.max(this.seen, e.revision);
          this.options.apply(e.key, e.operation === 'PUT' ? (e.json() as T) : undefined, e.revision);
          if (e.delta === 0) this.ready();
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
