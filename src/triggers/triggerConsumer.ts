/**
 * Run by every worker: one durable JetStream consumer, shared by all workers,
 * over the events stream. For each event, every trigger whose subject matches
 * and whose filter holds starts one execution, with an id derived from the
 * workflow, the trigger and the event's idempotency key (its `idempotencyKey`
 * expression, else its message id, else its stream sequence): a redelivered
 * event (a worker killed before its ack) starts nothing new. The same delivery
 * goes to the waitForEvent steps (src/events/waitDispatcher.ts): one consumer
 * for both, so an event costs the server one delivery and one ack. An event
 * is acknowledged once both are done with it (each is idempotent, so a
 * redelivery after a failure of either repeats nothing); events nothing wants
 * are acknowledged and left in the stream.
 */
import { createHash } from 'node:crypto';
import { AckPolicy, DeliverPolicy, jetstreamManager, StorageType, type JsMsg } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import type { CommandBus } from '../bus/commands.js';
import { ensureStream } from '../log/eventLog.js';
import { evaluate, isTrue } from '../events/expressions.js';
import type { EventsConfig } from './config.js';
import { publicHeaders } from './subjects.js';
import type { ActiveTrigger, WorkflowTriggers } from './workflowTriggers.js';

export const TRIGGERS_CONSUMER = 'smartspec-triggers';
/** Events handled at once per worker. */
const IN_FLIGHT = 128;

/** Create the events stream unless it exists (a stream named in configuration is used as it is). */
export async function ensureEventsStream(nc: NatsConnection, config: EventsConfig, replicas = 1): Promise<void> {
  await ensureStream(await jetstreamManager(nc), {
    name: config.stream,
    subjects: config.subjects,
    storage: StorageType.File,
    max_age: config.maxAgeMs * 1_000_000,
    duplicate_window: 120_000_000_000,
    num_replicas: replicas,
  });
}

/** The payload as JSON when it is JSON, else as text. */
export function eventPayload(msg: { data: Uint8Array; string(): string }): unknown {
  const text = msg.string();
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The execution id of one trigger's execution for one event. */
export function triggeredExecutionId(t: ActiveTrigger, key: string): string {
  const digest = createHash('sha256').update(`${t.tenant}\0${t.definition.id}\0${t.index}\0${key}`).digest('hex').slice(0, 32);
  return `trg-${t.definition.id.slice(0, 64)}-${digest}`;
}

export interface TriggerConsumerOptions {
  nc: NatsConnection;
  bus: CommandBus;
  triggers: WorkflowTriggers;
  config: EventsConfig;
  logger: Logger;
  replicas?: number;
  /** How long a worker may hold an event unacknowledged before it goes to another worker (ACK_WAIT_MS). */
  ackWaitMs?: number;
  /** Where each event also goes: the waitForEvent steps waiting for one. */
  waits?: { deliver(msg: JsMsg): Promise<void> };
}

export class TriggerConsumer {
  private messages?: { stop(): void };
  private loop?: Promise<void>;

  constructor(private readonly options: TriggerConsumerOptions) {}

  async start(): Promise<void> {
    const { nc, config, replicas } = this.options;
    await ensureEventsStream(nc, config, replicas);
    const jsm = await jetstreamManager(nc);
    const ack_wait = (this.options.ackWaitMs ?? 30_000) * 1_000_000;
    try {
      await jsm.consumers.add(config.stream, { durable_name: TRIGGERS_CONSUMER, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.New, ack_wait, max_deliver: 20, max_ack_pending: 10_000 });
    } catch {
      // exists already (made by another worker): keep it, with this ack wait
      await jsm.consumers.update(config.stream, TRIGGERS_CONSUMER, { ack_wait });
    }
    const consumer = await this.options.bus.js.consumers.get(config.stream, TRIGGERS_CONSUMER);
    const messages = await consumer.consume({ max_messages: IN_FLIGHT, expires: 5000 });
    this.messages = messages;
    const inFlight = new Set<Promise<void>>();
    this.loop = (async () => {
      for await (const msg of messages) {
        if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight);
        const p = this.handle(msg).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
      await Promise.allSettled(inFlight);
    })();
  }

  async stop(): Promise<void> {
    this.messages?.stop();
    await this.loop?.catch(() => undefined);
  }

  private async handle(msg: JsMsg): Promise<void> {
    const receivedAt = Date.now();
    try {
      let matching = this.options.triggers.matching(msg.subject);
      // Nothing wants it here: unless this worker has not yet seen a workflow registered before the event
      // was published (its mirror of the bucket lags under load), which would lose the event.
      if (matching.length === 0) {
        await this.options.triggers.syncedTo(receivedAt);
        matching = this.options.triggers.matching(msg.subject);
      }
      await Promise.all([this.options.waits?.deliver(msg), matching.length > 0 ? this.fireAll(msg, matching) : undefined]);
      msg.ack();
    } catch (err) {
      this.options.logger.warn({ err: { message: (err as Error).message }, subject: msg.subject, seq: msg.seq }, 'event not turned into executions or delivered to its waits yet; redelivered');
      msg.nak(1000);
    }
  }

  private fireAll(msg: JsMsg, matching: ActiveTrigger[]): Promise<void[]> {
    const event = eventPayload(msg);
    const headers = publicHeaders(msg.headers);
    const context = { event, subject: msg.subject, headers: headers ?? {} };
    return Promise.all(matching.map((t) => this.fire(t, msg, event, context, headers)));
  }

  private async fire(t: ActiveTrigger, msg: JsMsg, event: unknown, context: Record<string, unknown>, headers: Record<string, string> | undefined): Promise<void> {
    const { logger, bus, config } = this.options;
    const where = `workflow '${t.definition.id}' triggers[${t.index}]`;
    let input: unknown;
    let key: string;
    try {
      if (t.trigger.filter !== undefined && !(await isTrue(t.trigger.filter, context, `${where}.filter`))) return;
      input = t.trigger.input === undefined ? event : await evaluate(t.trigger.input, context, `${where}.input`);
      const explicit = t.trigger.idempotencyKey === undefined ? undefined : await evaluate(t.trigger.idempotencyKey, context, `${where}.idempotencyKey`);
      key = explicit !== undefined && explicit !== null ? `key:${typeof explicit === 'string' ? explicit : JSON.stringify(explicit)}` : msg.headers?.get('Nats-Msg-Id') ? `msg:${msg.headers.get('Nats-Msg-Id')}` : `seq:${config.stream}:${msg.seq}`;
    } catch (err) {
      // A failing expression fails the same way on every delivery: that trigger skips this event.
      logger.warn({ err: { message: (err as Error).message }, subject: msg.subject, seq: msg.seq }, 'trigger expression failed; event skipped for this trigger');
      return;
    }
    const executionId = triggeredExecutionId(t, key);
    await bus.publish('start', {
      executionId,
      definition: t.definition,
      input,
      principal: { tenant: t.tenant, keyId: `trigger:${t.definition.id}` },
      trigger: { subject: msg.subject, stream: config.stream, seq: msg.seq, ...(headers ? { headers } : {}) },
    }, `start:${executionId}`);
  }
}
