/**
 * Limits on the event-log stream (SMARTSPEC_STREAM_MAX_BYTES). The stream
 * refuses new records when full (discard policy `new`) rather than dropping
 * old ones: the log is the truth, and a silently lost history would be worse
 * than an execution that stops with a clear error. Space comes back when
 * ended executions are purged (SMARTSPEC_RETENTION, `smartspec purge`).
 */
import { DiscardPolicy, JetStreamApiError, type JetStreamManager } from '@nats-io/jetstream';
import { SmartSpecError } from '../errors.js';

export interface StreamLimits { maxBytes: number }

/** Give an existing stream these limits if it has others (a stream made before, or by another setting). */
export async function applyStreamLimits(jsm: JetStreamManager, stream: string, limits: StreamLimits): Promise<void> {
  const info = await jsm.streams.info(stream);
  if (info.config.max_bytes === limits.maxBytes && info.config.discard === DiscardPolicy.New) return;
  try {
    await jsm.streams.update(stream, { ...info.config, max_bytes: limits.maxBytes, discard: DiscardPolicy.New });
  } catch (err) {
    throw streamLimitError(stream, limits, err);
  }
}

/** A stream the server cannot give these limits (e.g. more bytes than its JetStream store allows). */
export function streamLimitError(stream: string, limits: StreamLimits, err: unknown): SmartSpecError {
  const why = err instanceof JetStreamApiError ? err.message : (err as Error).message;
  return new SmartSpecError('INVALID_CONFIG', `cannot limit stream ${stream} to ${limits.maxBytes.toLocaleString('en')} bytes (SMARTSPEC_STREAM_MAX_BYTES): ${why}`, {
    cause: err,
    details: { stream, maxBytes: limits.maxBytes },
  });
}

/** Whether a refused publish was refused because the stream is full. */
export const isStreamFull = (description: string) => /maximum (bytes|messages) exceeded|insufficient resources/i.test(description);

/** The append refused because the event log reached its size limit. */
export class LogFullError extends SmartSpecError {
  constructor(executionId: string, cause?: unknown) {
    super(
      'LOG_FULL',
      `the event log is full (SMARTSPEC_STREAM_MAX_BYTES): a record of ${executionId} was refused and nothing was dropped; purge ended executions (smartspec purge --older-than …, or SMARTSPEC_RETENTION) or raise the limit`,
      { retryable: true, cause, details: { executionId } },
    );
  }
}
