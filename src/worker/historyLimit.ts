/**
 * The bound on one execution's history (SMARTSPEC_HISTORY_LIMIT): a step that
 * fails and retries without end (or any loop of records) must not grow the
 * log for ever. The runner counts its records (O(1) per record); the last
 * record the history may hold ends the execution FAILED with HISTORY_LIMIT,
 * which no retry undoes, instead of whatever would have come next.
 */
import type { ErrorInfo, WorkflowEvent } from '../../machines/index.js';
import { SmartSpecError } from '../errors.js';

export const HISTORY_LIMIT = 'HISTORY_LIMIT';

const ends = (e: WorkflowEvent) => e.type === 'ExecutionCompleted' || e.type === 'ExecutionFailed' || e.type === 'ExecutionCancelled';

/**
 * The event to append as record number `recorded + 1`: `event` itself, or, when
 * that record is the last the history may hold and `event` does not end the
 * execution, the failure that ends it.
 */
export function withinHistoryLimit(event: WorkflowEvent, recorded: number, limit: number): WorkflowEvent {
  if (recorded + 1 < limit || ends(event)) return event;
  const error: ErrorInfo = {
    code: HISTORY_LIMIT,
    message: `the execution reached the limit of ${limit.toLocaleString('en')} records in its history (SMARTSPEC_HISTORY_LIMIT); it ends here rather than grow the log further`,
    retryable: false,
    details: { limit, records: recorded + 1, ...('stepId' in event && event.stepId ? { stepId: event.stepId } : {}) },
  };
  return { type: 'ExecutionFailed', ...('stepId' in event && event.stepId ? { stepId: event.stepId } : {}), error };
}

/** A resume needs room for its own record and at least the one that ends the execution. */
export function assertRoomToResume(executionId: string, recorded: number, limit: number): void {
  if (recorded + 2 <= limit) return;
  throw new SmartSpecError(
    HISTORY_LIMIT,
    `execution '${executionId}' has ${recorded.toLocaleString('en')} records, at the limit of ${limit.toLocaleString('en')} (SMARTSPEC_HISTORY_LIMIT): it cannot be resumed; start a new execution`,
    { details: { executionId, records: recorded, limit } },
  );
}
