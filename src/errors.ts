/**
 * One error base class for the whole product. Every error we raise has a
 * stable `code` (what a program switches on), a `retryable` flag (what the
 * retry policy reads) and an optional `cause`. Foreign errors (JetStream,
 * openai, fetch) are converted to these at the boundary; the edge maps codes
 * to HTTP statuses in one place (src/edge/problem.ts).
 */
export interface SmartSpecErrorOptions {
  retryable?: boolean;
  cause?: unknown;
  /** Structured facts for the client (e.g. the offending path). */
  details?: Record<string, unknown>;
}

export class SmartSpecError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  readonly details?: Record<string, unknown>;

  constructor(code: string, message: string, options: SmartSpecErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.details = options.details;
  }

  /** The JSON form recorded in the event log (`error` field) and sent to clients. */
  toJSON(): { code: string; message: string; retryable: boolean; details?: Record<string, unknown> } {
    return { code: this.code, message: this.message, retryable: this.retryable, ...(this.details ? { details: this.details } : {}) };
  }
}

/** A workflow definition (or a replacement step list) is invalid. */
export class DefinitionError extends SmartSpecError {
  readonly issues: { path: string; message: string }[];
  constructor(issues: { path: string; message: string }[]) {
    super('INVALID_DEFINITION', issues.map((i) => `${i.path}: ${i.message}`).join('; '), { details: { issues } });
    this.issues = issues;
  }
}

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

export class CheckpointNotFoundError extends SmartSpecError {
  constructor(executionId: string, checkpointId: string) {
    super('CHECKPOINT_NOT_FOUND', `checkpoint '${checkpointId}' not found in execution '${executionId}'`, {
      details: { executionId, checkpointId },
    });
  }
}

export class StepNotFoundError extends SmartSpecError {
  constructor(stepId: string, workflowId: string) {
    super('STEP_NOT_FOUND', `step '${stepId}' is not in workflow '${workflowId}'`, { details: { stepId, workflowId } });
  }
}

export class NoStepsError extends SmartSpecError {
  constructor(what: string) {
    super('NO_STEPS', `no steps found: ${what}`);
  }
}

/** Resume/cancel/signal asked of an execution whose status does not allow it. */
export class InvalidExecutionStateError extends SmartSpecError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('INVALID_EXECUTION_STATE', message, { details });
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
