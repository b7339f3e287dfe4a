/**
 * The edge's structured logger: pino, JSON lines, ISO timestamps. A
 * destination can be passed (tests capture lines; production writes stdout).
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { EdgeConfig } from './config.js';

/** `service` names the process in every line: smartspec-edge, smartspec-worker, smartspec-serve. */
export function createEdgeLogger(config: Pick<EdgeConfig, 'logLevel'>, destination?: DestinationStream, service = 'smartspec-edge'): Logger {
  const options = { level: config.logLevel, base: { service }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}
