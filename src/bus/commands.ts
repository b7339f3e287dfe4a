/**
 * Commands on JetStream: stream SMARTSPEC_COMMANDS (work-queue retention),
 * subjects smartspec.cmd.start|resume|cancel|signal|timer|child; with
 * NATS_PARTITIONS=N, N streams, a command going to its execution's partition
 * (src/nats/partitions.ts), each with the workers' consumer. The edge publishes them;
 * so may any other system (bodies below, documented in the README). Each
 * carries a message id, so a duplicate command within the stream's duplicate
 * window is stored once.
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType, type Consumer, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { MessageTooLargeError } from '../errors.js';
import { ensureStream } from '../log/eventLog.js';
import { principalSchema } from '../auth/principal.js';
import { EXECUTION_ID, type CommandType } from '../nats/names.js';
import { assertPartitions, Partitions } from '../nats/partitions.js';

const executionId = z.string().regex(EXECUTION_ID, 'must be 1-128 letters, digits, _ or -');
const budget = z.strictObject({ maxTokens: z.number().int().min(1) });
/** Who sent the command (the edge adds the API key's); absent from other publishers: see README "Security". */
const principal = principalSchema.optional();
/** The event a trigger started it for (src/triggers), recorded in ExecutionStarted. */
const triggeringEvent = z.strictObject({ subject: z.string().min(1), stream: z.string().min(1), seq: z.number().int().min(1), headers: z.record(z.string(), z.string()).optional() });
/** A child execution's parent step (src/worker/children.ts). */
const parentLink = z.strictObject({ executionId, stepId: z.string().min(1), attempt: z.number().int().min(1), index: z.number().int().min(0).optional() });
const outerScope = z.strictObject({ item: z.unknown(), index: z.number().int().min(0), steps: z.record(z.string(), z.object({ output: z.unknown() })), iteration: z.number().int().min(1).optional() });

export const commandSchemas = {
  start: z.object({ executionId, definition: z.unknown(), input: z.unknown().optional(), budget: budget.optional(), principal, trigger: triggeringEvent.optional(), parent: parentLink.optional(), outer: outerScope.optional() }),
  resume: z.object({ executionId, checkpointId: z.string().optional(), fromStep: z.string().optional(), steps: z.unknown().optional(), budget: budget.optional(), principal, ofChild: z.boolean().optional() }),
  cancel: z.object({ executionId, reason: z.string().optional(), principal }),
  signal: z.object({ executionId, name: z.string().min(1), payload: z.unknown().optional(), principal }),
  /** A step's durable timer is due (published by workers; `at` is its recorded time). */
  timer: z.object({ executionId, stepId: z.string().min(1), attempt: z.number().int().min(1), at: z.iso.datetime({ offset: true }) }),
  /** A child execution ended (published by workers): `event` is the record its parent's step takes. */
  child: z.object({ executionId, event: z.looseObject({ type: z.enum(['StepCompleted', 'StepFailed']), stepId: z.string().min(1) }) }),
  /** A slot of concurrency key `key` may be free for `holder` (a queued step attempt or execution; published by workers). */
  wake: z.object({ executionId, key: z.string().min(1), holder: z.string().min(1) }),
  /** A running execution no live process hosts (src/recovery, published by the edge): continue it from its log. */
  recover: z.object({ executionId }),
} satisfies Record<CommandType, z.ZodType>;

export type Command<T extends CommandType = CommandType> = z.infer<(typeof commandSchemas)[T]>;

export const WORKERS_CONSUMER = 'smartspec-workers';
/** Room for a publish's headers (message id), which count against max_payload. */
const HEADERS_BYTES = 512;

export interface CommandBusOptions {
  replicas?: number;
  /** How many streams the commands are spread over (default NATS_PARTITIONS, else 1). */
  partitions?: Partitions;
  /** Workers set up the shared consumer; publishers (the edge) leave its settings alone. */
  consumer?: {
    /** How long a worker may hold a command without acking or saying it is still working. */
    ackWaitMs?: number;
    /** Deliveries before a command is given up (a poison command must not loop forever). */
    maxDeliver?: number;
  };
}

export class CommandBus {
  private constructor(readonly js: JetStreamClient, readonly jsm: JetStreamManager, private readonly nc: NatsConnection, readonly partitions: Partitions) {}

  static async open(nc: NatsConnection, options: CommandBusOptions = {}): Promise<CommandBus> {
    const jsm = await jetstreamManager(nc);
    const partitions = options.partitions ?? Partitions.fromEnv();
    await assertPartitions(jsm, partitions);
    for (const k of partitions.all()) {
      const description = partitions.describe('commands', k);
      await ensureStream(jsm, {
        name: partitions.commandStream(k),
        subjects: partitions.commandSubjects(k),
        ...(description ? { description } : {}),
        storage: StorageType.File,
        retention: RetentionPolicy.Workqueue,
        num_replicas: options.replicas ?? 1,
        duplicate_window: 120_000_000_000,
      });
    }
    const bus = new CommandBus(jetstream(nc), jsm, nc, partitions);
    if (options.consumer) for (const k of partitions.all()) await bus.ensureConsumer(partitions.commandStream(k), options.consumer);
    return bus;
  }

  /**
   * Publish a command (to its execution's partition); `msgID` makes a repeat within two minutes a
   * no-op. `data`: the command as `encode` gave it, when the caller has it already.
   */
  async publish<T extends CommandType>(type: T, command: Command<T>, msgID: string, data = this.encode(type, command)): Promise<{ seq: number; duplicate: boolean }> {
    const ack = await this.js.publish(this.partitions.commandSubject(type, command.executionId), data, { msgID, timeout: 5000, retries: 5 });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  /**
   * The command's bytes; refused (COMMAND_TOO_LARGE, not retryable) when NATS
   * would refuse them. Large inputs and payloads travel as refs (src/payloads),
   * so only a very large definition gets here.
   */
  encode<T extends CommandType>(type: T, command: Command<T>): Uint8Array {
    const data = new TextEncoder().encode(JSON.stringify(command));
    const maxBytes = this.nc.info?.max_payload;
    if (maxBytes !== undefined && data.length + HEADERS_BYTES > maxBytes) {
      throw new MessageTooLargeError('COMMAND_TOO_LARGE', `the ${type} command is ${data.length} bytes, over NATS's max_payload of ${maxBytes} bytes: make the definition or steps smaller (inputs and payloads of any size up to SMARTSPEC_PAYLOAD_MAX_BYTES are stored separately)`, { bytes: data.length, maxBytes });
    }
    return data;
  }

  /** The durable consumer all workers share on a command stream: each command goes to one worker. */
  private async ensureConsumer(stream: string, options: NonNullable<CommandBusOptions['consumer']>): Promise<void> {
    const config = {
      durable_name: WORKERS_CONSUMER,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: (options.ackWaitMs ?? 30_000) * 1_000_000,
      max_deliver: options.maxDeliver ?? 50,
      max_ack_pending: 20_000,
    };
    try {
      await this.jsm.consumers.add(stream, config);
    } catch {
      // exists with other settings (another process configured it): keep the settings but update ack_wait
      await this.jsm.consumers.update(stream, WORKERS_CONSUMER, { ack_wait: config.ack_wait, max_deliver: config.max_deliver, max_ack_pending: config.max_ack_pending });
    }
  }

  /** The workers' consumer on every command stream (one per partition), each consumed by every worker. */
  async consumers(): Promise<Consumer[]> {
    return Promise.all(this.partitions.all().map((k) => this.js.consumers.get(this.partitions.commandStream(k), WORKERS_CONSUMER)));
  }
}

/** Parse a command body; throws a zod error naming the field. */
export function parseCommand<T extends CommandType>(type: T, data: unknown): Command<T> {
  return commandSchemas[type].parse(data) as Command<T>;
}
