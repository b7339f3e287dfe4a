/**
 * The edge's structured logger: pino, JSON lines, ISO timestamps. A
 * destination can be passed (tests capture lines; production writes stdout).
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import type { EdgeConfig } from './config.js';

export function createEdgeLogger(config: Pick<EdgeConfig, 'logLevel'>, destination?: DestinationStream): Logger {
  const options = { level: config.logLevel, base: { service: 'smartspec-edge' }, timestamp: pino.stdTimeFunctions.isoTime };
  return destination ? pino(options, destination) : pino(options);
}
