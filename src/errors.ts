/**
 * The product's errors. The base class (stable `code`, `retryable`, `cause`)
 * and the errors the pure machines raise live in machines/errors.ts; the rest
 * are here. Foreign errors (JetStream, openai, fetch) are converted to these at
 * the boundary; the edge maps codes to HTTP statuses in one place
 * (src/edge/problem.ts).
 */
export {
  SmartSpecError,
  DefinitionError,
  InvalidExecutionStateError,
  StepNotFoundError,
  type SmartSpecErrorOptions,
} from '../machines/errors.js';
import { SmartSpecError } from '../machines/errors.js';

/** Input that is not a definition problem: bad JSON in --input, bad query values, and so on. */
export class InvalidInputError extends SmartSpecError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('INVALID_INPUT', message, { details });
  }
}

export class ExecutionNotFoundError extends SmartSpecError {
  constructor(executionId: string) {
    super('EXECUTION_NOT_FOUND', `execution '${executionId}' not found`, { details: { executionId } });
  }
}

export class WorkflowNotFoundError extends SmartSpecError {
  constructor(workflowId: string) {
    super('WORKFLOW_NOT_FOUND', `workflow '${workflowId}' not found`, { details: { workflowId } });
  }
}

/** A start of a workflow its tenant has disabled (POST /workflows/:id/enable turns it back on). */
export class WorkflowDisabledError extends SmartSpecError {
  constructor(workflowId: string, disabledAt: string) {
    super('WORKFLOW_DISABLED', `workflow '${workflowId}' is disabled (since ${disabledAt}): enable it to start executions of it`, { details: { workflowId, disabledAt } });
  }
}

export class CheckpointNotFoundError extends SmartSpecError {
  constructor(executionId: string, checkpointId: string) {
    super('CHECKPOINT_NOT_FOUND', `checkpoint '${checkpointId}' not found in execution '${executionId}'`, {
      details: { executionId, checkpointId },
    });
  }
}

export class NoStepsError extends SmartSpecError {
  constructor(what: string) {
    super('NO_STEPS', `no steps found: ${what}`);
  }
}

/** A start for an execution id that already has a log (or is hosted here). */
export class ExecutionExistsError extends SmartSpecError {
  constructor(executionId: string) {
    super('EXECUTION_EXISTS', `execution '${executionId}' already exists`, { details: { executionId } });
  }
}

/** Another live process owns the execution. */
export class ExecutionOwnedError extends SmartSpecError {
  constructor(executionId: string, owner: string) {
    super('EXECUTION_OWNED', `execution '${executionId}' is owned by live process ${owner}; it will continue there`, {
      details: { executionId, owner },
    });
  }
}

/** Another writer appended to the execution's log first (optimistic concurrency). */
export class ConcurrencyError extends SmartSpecError {
  constructor(executionId: string, expectedSeq: number, cause?: unknown) {
    super('CONCURRENT_WRITE', `another writer appended to execution '${executionId}' after sequence ${expectedSeq}`, {
      cause,
      details: { executionId, expectedSeq },
    });
  }
}

/** A step failed; carries the step's own code (TIMEOUT, HTTP_5XX, ...). */
export class StepError extends SmartSpecError {}

/** The log of an execution does not verify (broken hash chain, state mismatch). */
export class TamperedLogError extends SmartSpecError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('LOG_TAMPERED', message, { details });
  }
}

export class NatsServerNotFoundError extends SmartSpecError {
  constructor() {
    super(
      'NATS_SERVER_NOT_FOUND',
      'nats-server not found: install it (Debian/Ubuntu: apt-get install nats-server) or set NATS_URL to a running NATS server with JetStream',
    );
  }
}

/** Normalise anything thrown into the record form we log. */
export function toErrorRecord(err: unknown): { code: string; message: string; retryable: boolean; details?: Record<string, unknown> } {
  if (err instanceof SmartSpecError) return err.toJSON();
  if (err instanceof Error) return { code: 'ERROR', message: err.message, retryable: false };
  return { code: 'ERROR', message: String(err), retryable: false };
}

/**
 * NATS refused a message as too large (over max_payload, or the stream's
 * max_msg_size). Not retryable: sending it again can only fail again.
 */
export class MessageTooLargeError extends SmartSpecError {
  constructor(code: 'RECORD_TOO_LARGE' | 'COMMAND_TOO_LARGE', message: string, details: { bytes: number; maxBytes?: number }) {
    super(code, message, { details });
  }
}
