/**
 * The worker's retention loop (SMARTSPEC_RETENTION): a purge pass at start,
 * then one every SMARTSPEC_RETENTION_INTERVAL. Several workers may run it at
 * once: a pass only removes what has ended, so two passes agree.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { purgeEndedExecutions } from './purge.js';
import type { Partitions } from '../nats/partitions.js';

export interface RetentionOptions {
  retentionMs: number;
  /** Which streams hold the log (the service's). */
  partitions?: Partitions;
  intervalMs: number;
  logger: Logger;
}

/** Start purging in the background; the returned function stops it (and waits for a pass under way). */
export function startRetention(nc: NatsConnection, options: RetentionOptions): () => Promise<void> {
  let running: Promise<void> | undefined;
  let stopped = false;
  const pass = () => {
    if (running || stopped || nc.isClosed()) return;
    running = purgeEndedExecutions(nc, { olderThanMs: options.retentionMs, partitions: options.partitions })
      .then((report) => {
        if (report.purged.length > 0) options.logger.info({ purged: report.purged.length, kept: report.kept, cutoff: report.cutoff }, 'retention: purged ended executions');
      })
      .catch((err) => options.logger.warn({ err }, 'retention pass failed; it runs again at the next interval'))
      .finally(() => (running = undefined));
  };
  pass();
  const timer = setInterval(pass, options.intervalMs);
  timer.unref();
  return async () => {
    stopped = true;
    clearInterval(timer);
    await running;
  };
}
