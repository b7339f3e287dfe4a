/**
 * The product's error base class and the errors the pure layer raises. Every
 * error has a stable `code` (what a program switches on), a `retryable` flag
 * (what the retry policy reads) and an optional `cause`. The rest of the error
 * tree, and the conversion of foreign errors, is in src/errors.ts.
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
  /** `line` and `column` (1-based): where in the text a syntax error is. */
  readonly issues: { path: string; message: string; line?: number; column?: number }[];
  constructor(issues: { path: string; message: string; line?: number; column?: number }[]) {
    super('INVALID_DEFINITION', issues.map((i) => `${i.path}: ${i.message}`).join('; '), { details: { issues } });
    this.issues = issues;
  }
}

export class StepNotFoundError extends SmartSpecError {
  constructor(stepId: string, workflowId: string) {
    super('STEP_NOT_FOUND', `step '${stepId}' is not in workflow '${workflowId}'`, { details: { stepId, workflowId } });
  }
}

/** Resume/cancel/signal asked of an execution whose status does not allow it. */
export class InvalidExecutionStateError extends SmartSpecError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('INVALID_EXECUTION_STATE', message, { details });
  }
}
