/**
 * Following a KV bucket in memory: a watch that replays the current values,
 * then every change, handed to `apply` with its revision. A watch can end or,
 * across a NATS fail-over, go quiet without ending (and its iterator may not
 * even end when stopped); both are caught, the second by comparing what was
 * delivered with the bucket's last revision every `stallCheckMs`, and a fresh
 * watch replays the bucket's current values. Used by the execution index and
 * the API key store.
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
  /** Highest revision any watch has delivered. */
  private seen = 0;
  private seenAtLastCheck = -1;
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
        const iter = await this.kv.watch();
        if (!live()) return iter.stop();
        this.current = iter;
        if ((await this.kv.status()).values === 0) this.ready(); // an empty bucket sends no entry
        for await (const e of iter) {
          if (!live()) break;
          this.options.apply(e.key, e.operation === 'PUT' ? (e.json() as T) : undefined, e.revision);
          this.seen = Math.max(this.seen, e.revision);
          if (e.delta === 0) this.ready();
        }
      } catch {
        // connection trouble: watch again (it replays the current values)
      }
      await new Promise((r) => setTimeout(r, this.options.retryMs).unref());
    }
  }

  /** Behind the bucket and nothing delivered since the last check: abandon that watch for a new one. */
  private async restartIfStalled(): Promise<void> {
    const last = await this.kv.status().then((s) => s.streamInfo.state.last_seq, () => undefined);
    const stalled = last !== undefined && last > this.seen && this.seen === this.seenAtLastCheck;
    this.seenAtLastCheck = this.seen;
    if (!stalled || this.closed) return;
    this.current?.stop();
    void this.follow(++this.generation);
  }
}
