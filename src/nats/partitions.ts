/**
 * Partitions (NATS_PARTITIONS): the event log and the commands spread over N
 * streams, so that on a cluster each stream's leader can sit on another node.
 * Unset or 1: one stream each, as always (SMARTSPEC_EXECUTIONS over
 * `smartspec.exec.<id>`, SMARTSPEC_COMMANDS over `smartspec.cmd.<type>`).
 * N > 1: execution `<id>` belongs to partition k = fnv1a32(utf-8 bytes of id) mod N,
 * its history is on `smartspec.exec.p<k>.<id>` in SMARTSPEC_EXECUTIONS_P<k>,
 * and its commands on `smartspec.cmd.p<k>.<type>` in SMARTSPEC_COMMANDS_P<k>
 * (which also takes the unpartitioned `smartspec.cmd.<type>` other systems
 * publish). Every reader and writer asks this module where an execution is.
 *
 * N is chosen once per deployment: the streams record it (their description),
 * and a process started with another N is refused (assertPartitions) rather
 * than silently losing sight of the histories written under the old N.
 */
import { JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import { z } from 'zod';
import { ConfigError } from '../edge/config.js';
import { SmartSpecError } from '../errors.js';
import { COMMAND_SUBJECTS, COMMANDS_STREAM, EXECUTION_SUBJECTS, EXECUTIONS_STREAM, type CommandType } from './names.js';

export const MAX_PARTITIONS = 64;

/** FNV-1a, 32 bits, over the UTF-8 bytes: a stable hash any language can compute (docs/nats.md). */
export function fnv1a32(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export class Partitions {
  constructor(readonly count: number) {
    if (!Number.isInteger(count) || count < 1 || count > MAX_PARTITIONS) throw new RangeError(`partitions must be a whole number from 1 to ${MAX_PARTITIONS}, got ${count}`);
  }

  /** NATS_PARTITIONS (default 1). */
  static fromEnv(env: NodeJS.ProcessEnv = process.env): Partitions {
    const raw = env.NATS_PARTITIONS?.trim();
    if (!raw) return new Partitions(1);
    const parsed = z.coerce.number().int().min(1).max(MAX_PARTITIONS).safeParse(raw);
    if (!parsed.success) throw new ConfigError([{ variable: 'NATS_PARTITIONS', message: `expected a whole number from 1 to ${MAX_PARTITIONS}, got '${raw}'` }]);
    return new Partitions(parsed.data);
  }

  get partitioned(): boolean {
    return this.count > 1;
  }

  /** The partition of an execution. */
  of(executionId: string): number {
    return this.partitioned ? fnv1a32(executionId) % this.count : 0;
  }

  /** 0 … N-1. */
  all(): number[] {
    return Array.from({ length: this.count }, (_, k) => k);
  }

  executionStream(k: number): string {
    return this.partitioned ? `${EXECUTIONS_STREAM}_P${k}` : EXECUTIONS_STREAM;
  }

  executionStreamOf(executionId: string): string {
    return this.executionStream(this.of(executionId));
  }

  /** The subjects stream k holds. */
  executionSubjects(k: number): string[] {
    return [this.partitioned ? `smartspec.exec.p${k}.*` : EXECUTION_SUBJECTS];
  }

  executionSubject(executionId: string): string {
    return this.partitioned ? `smartspec.exec.p${this.of(executionId)}.${executionId}` : `smartspec.exec.${executionId}`;
  }

  /** The execution id of a subject of the event log (its last token). */
  executionIdOf(subject: string): string {
    return subject.slice(subject.lastIndexOf('.') + 1);
  }

  commandStream(k: number): string {
    return this.partitioned ? `${COMMANDS_STREAM}_P${k}` : COMMANDS_STREAM;
  }

  /** Partition 0 also takes the unpartitioned subjects, so other systems publish as before. */
  commandSubjects(k: number): string[] {
    if (!this.partitioned) return [COMMAND_SUBJECTS];
    return k === 0 ? [`smartspec.cmd.p${k}.*`, COMMAND_SUBJECTS] : [`smartspec.cmd.p${k}.*`];
  }

  commandSubject(type: CommandType, executionId: string): string {
    return this.partitioned ? `smartspec.cmd.p${this.of(executionId)}.${type}` : `smartspec.cmd.${type}`;
  }

  /** The streams' description, where the deployment's N is recorded. */
  describe(kind: 'event log' | 'commands', k: number): string | undefined {
    return this.partitioned ? `SmartSpec ${kind}, partition ${k} of ${this.count} (NATS_PARTITIONS=${this.count})` : undefined;
  }

  /** Every event-log and command stream of this layout. */
  streams(): string[] {
    return [...this.all().map((k) => this.executionStream(k)), ...this.all().map((k) => this.commandStream(k))];
  }
}

const SMARTSPEC_STREAM = new RegExp(`^(${EXECUTIONS_STREAM}|${COMMANDS_STREAM})(_P(\\d+))?$`);

/** A process whose NATS_PARTITIONS differs from the one the deployment's streams were made with. */
export class PartitionsMismatchError extends SmartSpecError {
  constructor(wanted: number, found: number, stream: string) {
    super(
      'PARTITIONS_MISMATCH',
      `NATS_PARTITIONS=${wanted}, but this NATS holds SmartSpec's streams in ${found} partition${found === 1 ? '' : 's'} (stream ${stream}): ` +
        `partitions are chosen once per deployment. Start with NATS_PARTITIONS=${found}${found === 1 ? ' (or unset)' : ''}, or use a new NATS deployment (or account) for ${wanted}`,
      { details: { wanted, found, stream } },
    );
  }
}

/**
 * Refuse to go on when the streams already on the server were made with another N:
 * histories written under it would be looked for in the wrong streams.
 */
export async function assertPartitions(jsm: JetStreamManager, partitions: Partitions): Promise<void> {
  for await (const name of jsm.streams.names()) {
    const m = SMARTSPEC_STREAM.exec(name);
    if (!m) continue;
    const found = m[2] ? await recordedCount(jsm, name, Number(m[3]), partitions.count) : 1;
    if (found !== undefined && found !== partitions.count) throw new PartitionsMismatchError(partitions.count, found, name);
  }
}

/**
 * N as recorded in partition stream k's description. Without one (edited away), the name
 * alone says only that N > k and N > 1: `wanted` is taken when it fits.
 */
async function recordedCount(jsm: JetStreamManager, stream: string, k: number, wanted: number): Promise<number | undefined> {
  try {
    const description = (await jsm.streams.info(stream)).config.description ?? '';
    const n = /NATS_PARTITIONS=(\d+)/.exec(description);
    if (n) return Number(n[1]);
    return wanted > 1 && k < wanted ? wanted : Math.max(k + 1, 2);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === 10059) return undefined; // deleted meanwhile
    throw err;
  }
}
