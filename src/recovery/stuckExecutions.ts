/**
 * The safety net for an execution nobody continues. A running execution is
 * held by the command that made a worker its host; if that command was acked
 * while no live process went on hosting it (a host that lost a race for the
 * log acks its command, trusting the winner; the winner can then fall away in
 * a fail-over), nothing would ever come back to it. The edge, which follows the
 * execution index, looks every so often for executions the index lists as
 * RUNNING whose log has been quiet for `quietMs` and that no live process
 * hosts, and publishes a `recover` command for each: the worker that takes it
 * continues the execution from its log (or, if it has ended, brings the index
 * up to it). Its message id names the last record, so edges sweeping together
 * publish one command per stall.
 */
import type { Logger } from 'pino';
import type { NatsConnection } from '@nats-io/transport-node';
import type { CommandBus } from '../bus/commands.js';
import type { EventLog } from '../log/eventLog.js';
import type { ExecutionIndex } from '../registry/executionIndex.js';
import { pingOwner } from '../worker/control.js';

export interface StuckSweeperDeps {
  nc: NatsConnection;
  log: EventLog;
  index: ExecutionIndex;
  bus: CommandBus;
  logger: Logger;
}

/** Executions looked at per sweep, oldest first: a backlog is worked through over several sweeps. */
const PER_SWEEP = 1_000;

export class StuckSweeper {
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<number>;

  constructor(private readonly deps: StuckSweeperDeps, private readonly quietMs: number) {}

  /** Sweep every third of `quietMs`. */
  start(): void {
    this.timer = setInterval(() => void this.sweep().catch((err) => this.deps.logger.warn({ err }, 'stuck-execution sweep failed')), Math.max(1000, Math.floor(this.quietMs / 3)));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping?.catch(() => undefined);
  }

  /** One sweep; returns how many executions it sent a `recover` command for. */
  sweep(): Promise<number> {
    this.sweeping ??= this.sweepOnce().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async sweepOnce(): Promise<number> {
    const { nc, log, index, bus, logger } = this.deps;
    const quietSince = Date.now() - this.quietMs;
    const candidates = index.list({ status: 'RUNNING', limit: Number.MAX_SAFE_INTEGER })
      .filter((e) => Date.parse(e.updatedAt) < quietSince)
      .sort((a, b) => a.updatedAt.localeCompare(b.updatedAt))
      .slice(0, PER_SWEEP);
    let sent = 0;
    for (const entry of candidates) {
      const id = entry.executionId;
      const last = await log.last(id);
      if (!last || Date.parse(last.record.at) >= quietSince) continue;
      if (await pingOwner(nc, id)) continue;
      await bus.publish('recover', { executionId: id }, `recover:${id}:${last.seq}`);
      logger.warn({ executionId: id, lastSeq: last.seq, lastRecord: last.record.type, quietMs: Date.now() - Date.parse(last.record.at) }, 'no live process hosts a running execution: sent it to a worker to continue');
      sent++;
    }
    return sent;
  }
}
