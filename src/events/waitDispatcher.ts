/**
 * Run by every worker: delivers events to waitForEvent steps. The events come
 * from the worker's one consumer of the events stream (the durable consumer
 * it shares with every worker, src/triggers/triggerConsumer.ts: one delivery
 * and one ack per event serve triggers and waits alike); each event is
 * matched against the waits (a mirror of the waits bucket) whose subject it is
 * on and that began before it was stored, and a match is sent to its
 * execution as the step's internal signal, with a message id per wait (so the
 * first match published wins). A waiting execution costs a mirror entry here,
 * nothing else: the signal command brings it back on any worker.
 *
 * No event is missed while a wait becomes known: a worker that learns of a
 * wait reads the events stored since the wait began up to that moment, so an
 * event handled by any worker before it knew the wait is read again by that
 * same worker.
 */
import { DeliverPolicy, jetstreamManager, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { eventSignalName } from '../../machines/definition.js';
import type { CommandBus } from '../bus/commands.js';
import { evaluate, expressionBody } from './expressions.js';
import { equalityOf, keyAt, primitiveKey, type EqualityMatch } from './matchKey.js';
import { eventPayload } from '../triggers/triggerConsumer.js';
import { publicHeaders, subjectMatches } from '../triggers/subjects.js';
import type { WaitEntry, WaitStore } from './waitStore.js';

/** A catch-up read stops after this many events (a wait that began long ago on a busy subject). */
const MAX_CATCHUP_EVENTS = 10_000;

interface StoredEvent { subject: string; seq: number; data: Uint8Array; string(): string; headers?: JsMsg['headers']; time: string; timeMs: number }

export interface WaitDispatcherOptions {
  nc: NatsConnection;
  bus: CommandBus;
  waits: WaitStore;
  logger: Logger;
}

export class WaitDispatcher {
  /** Waits by subject pattern, then by key. */
  private readonly bySubject = new Map<string, Map<string, WaitEntry>>();
  /** Waits whose match is `event.<path> = <value>`, with that value: an event with another value there is not theirs. */
  private readonly keyed = new Map<string, { path: string[]; key: string }>();
  /** The shape of each match expression seen (many waits share one). */
  private readonly shapes = new Map<string, EqualityMatch | null>();
  private watch?: { stop(): void };
  private stopped = false;

  constructor(private readonly options: WaitDispatcherOptions) {}

  /** Start mirroring the waits; resolves once the current ones are in (and their catch-up reads started). */
  async start(): Promise<void> {
    const { waits } = this.options;
    await new Promise<void>((ready) => {
      this.watch = waits.watch(({ key, entry }) => {
        for (const m of this.bySubject.values()) m.delete(key);
        this.keyed.delete(key);
        if (!entry) return;
        let m = this.bySubject.get(entry.subject);
        if (!m) this.bySubject.set(entry.subject, (m = new Map()));
        m.set(key, entry);
        void this.keyOf(key, entry);
        void this.catchUp(key, entry).catch((err) => this.options.logger.warn({ err: { message: (err as Error).message }, wait: key }, 'catch-up read of a wait failed'));
      }, ready);
    });
  }

  stop(): void {
    this.stopped = true;
    this.watch?.stop();
  }

  /** Send an event of the events stream to the waits it matches; settles once their signals are published. */
  deliver(msg: JsMsg): Promise<void> {
    return this.bySubject.size === 0 ? Promise.resolve() : this.dispatch(toEvent(msg));
  }

  /** How many waits this worker knows of (for the bench). */
  get size(): number {
    let n = 0;
    for (const m of this.bySubject.values()) n += m.size;
    return n;
  }

  /** For a match of the form `event.<path> = <value>`, that value (read once, from the wait's own scope). */
  private async keyOf(key: string, w: WaitEntry): Promise<void> {
    const body = w.match === undefined ? undefined : expressionBody(w.match);
    if (body === undefined) return;
    let shape = this.shapes.get(body);
    if (shape === undefined) {
      if (this.shapes.size >= 10_000) this.shapes.clear();
      this.shapes.set(body, (shape = equalityOf(body) ?? null));
    }
    if (!shape) return;
    try {
      const value = primitiveKey(await evaluate(shape.other, w.scope, `steps.${w.stepId}.match`));
      // Still the same wait: it may have ended, or been armed again, meanwhile.
      if (value !== undefined && this.bySubject.get(w.subject)?.get(key) === w) this.keyed.set(key, { path: shape.eventPath, key: value });
    } catch {
      // Left to the whole expression, which fails (and says so) event by event.
    }
  }

  /** Send the event to every wait it matches. */
  private async dispatch(event: StoredEvent, only?: string): Promise<void> {
    let payload: unknown;
    let parsed = false;
    const candidates: [string, WaitEntry][] = [];
    for (const [pattern, m] of this.bySubject) {
      if (!subjectMatches(pattern, event.subject)) continue;
      for (const [key, w] of m) {
        if (event.seq <= w.afterSeq || (w.afterMs !== undefined && event.timeMs < w.afterMs) || (only !== undefined && key !== only)) continue;
        const keyed = this.keyed.get(key);
        if (keyed) {
          if (!parsed) [payload, parsed] = [eventPayload(event), true];
          const value = keyAt(payload, keyed.path);
          if (value !== undefined && value !== keyed.key) continue; // its match is false: not worth evaluating
        }
        candidates.push([key, w]);
      }
    }
    if (candidates.length === 0) return;
    if (!parsed) payload = eventPayload(event);
    const headers = publicHeaders(event.headers) ?? {};
    const sends: Promise<void>[] = [];
    // One evaluation at a time (each within its own time bound); the matches are sent together.
    for (const [key, w] of candidates) {
      if (w.match !== undefined) {
        try {
          if ((await evaluate(w.match, { ...w.scope, event: payload, subject: event.subject, headers }, `steps.${w.stepId}.match`)) !== true) continue;
        } catch (err) {
          // Fails for this event whatever happens: not a match (logged; the wait goes on).
          this.options.logger.warn({ err: { message: (err as Error).message }, wait: key }, 'match expression failed for an event');
          continue;
        }
      }
      const value = { subject: event.subject, seq: event.seq, publishedAt: event.time, data: payload, headers };
      // Once sent, the wait is done here (the runner removes it from the bucket); a second match sent meanwhile has the same message id.
      sends.push(this.options.bus.publish('signal', { executionId: w.executionId, name: eventSignalName(w.stepId), payload: value }, `event:${key}`).then(() => { this.bySubject.get(w.subject)?.delete(key); this.keyed.delete(key); }));
    }
    await Promise.all(sends);
  }

  /** Read the events stored since the wait began, up to now, and deliver the first match. */
  private async catchUp(key: string, w: WaitEntry): Promise<void> {
    const { nc, waits } = this.options;
    const js = this.options.bus.js as JetStreamClient;
    const last = (await (await jetstreamManager(nc)).streams.info(waits.stream)).state.last_seq;
    if (last <= w.afterSeq) return;
    const consumer = await js.consumers.get(waits.stream, { filter_subjects: w.subject, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: w.afterSeq + 1 });
    try {
      let read = 0;
      const pending = (await consumer.info(true)).num_pending;
      if (pending === 0) return;
      const messages = await consumer.fetch({ max_messages: Math.min(pending, MAX_CATCHUP_EVENTS), expires: 5000 });
      for await (const m of messages) {
        if (this.stopped || m.seq > last || !this.bySubject.get(w.subject)?.has(key)) break;
        await this.dispatch(toEvent(m), key);
        if (++read >= MAX_CATCHUP_EVENTS || m.info.pending === 0) break;
      }
      await messages.close().catch(() => undefined);
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }
}

function toEvent(m: JsMsg): StoredEvent {
  const timeMs = Math.floor(m.info.timestampNanos / 1_000_000);
  return { subject: m.subject, seq: m.seq, data: m.data, string: () => m.string(), headers: m.headers, time: new Date(timeMs).toISOString(), timeMs };
}
