/**
 * The client's errors: every refusal of the API (problem+json, RFC 9457)
 * becomes an ApiError of the class its status says, carrying the problem's
 * stable `code`, `detail` and, for a 422, every field at fault. One table
 * maps statuses to classes (as openai-node does).
 */
import type { Problem } from '../contracts/http.js';

export interface FieldError {
  path: string;
  message: string;
}

export class ApiError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The stable error code, e.g. EXECUTION_NOT_FOUND (see /openapi.json). */
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  /** The whole problem document, extensions included. */
  readonly problem: Problem;
  /** The X-Request-Id of the answer, to quote when reporting. */
  readonly requestId?: string;

  constructor(problem: Problem, requestId?: string) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.name = new.target.name;
    this.status = problem.status;
    this.code = problem.code;
    this.title = problem.title;
    this.detail = problem.detail;
    this.problem = problem;
    this.requestId = requestId;
  }
}

/** 400: the request could not be read (malformed JSON, invalid input). */
export class BadRequestError extends ApiError {}
/** 401: no API key, or one that is not valid. */
export class UnauthorizedError extends ApiError {}
/** 403: the key lacks the scope the request needs. */
export class ForbiddenError extends ApiError {}
/** 404: no such execution, workflow, checkpoint or step (or another tenant's). */
export class NotFoundError extends ApiError {}
/** 409: well-formed, but not possible in the execution's current state. */
export class ConflictError extends ApiError {}
/** 413: the body or a value in it is too large. */
export class PayloadTooLargeError extends ApiError {}
/** 422: a field is invalid; `errors` names each one. */
export class ValidationError extends ApiError {
  get errors(): FieldError[] {
    return (this.problem.errors as FieldError[] | undefined) ?? [];
  }
}
/** 429: too many requests (see `retryAfterSeconds`) or too many running executions. */
export class RateLimitedError extends ApiError {
  /** The Retry-After header, in seconds, when the server sent one. */
  retryAfterSeconds?: number;
}
/** 5xx: the server failed; `retryable` for 502/503/504. */
export class ServerError extends ApiError {
  get retryable(): boolean {
    return this.status === 502 || this.status === 503 || this.status === 504;
  }
}

const BY_STATUS: Record<number, typeof ApiError> = {
  400: BadRequestError,
  401: UnauthorizedError,
  403: ForbiddenError,
  404: NotFoundError,
  409: ConflictError,
  413: PayloadTooLargeError,
  422: ValidationError,
  429: RateLimitedError,
};

/** The typed error for a refused response (its body already read as `body`). */
export function errorFor(res: Response, body: unknown): ApiError {
  const problem = isProblem(body)
    ? body
    : { type: 'about:blank', title: res.statusText || `HTTP ${res.status}`, status: res.status, detail: typeof body === 'string' && body ? body.slice(0, 500) : `the server answered ${res.status}`, code: `HTTP_${res.status}` };
  const Class = BY_STATUS[res.status] ?? (res.status >= 500 ? ServerError : ApiError);
  const err = new Class(problem, res.headers.get('x-request-id') ?? undefined);
  const retryAfter = Number(res.headers.get('retry-after'));
  if (err instanceof RateLimitedError && Number.isFinite(retryAfter) && retryAfter > 0) err.retryAfterSeconds = retryAfter;
  return err;
}

function isProblem(body: unknown): body is Problem {
  const b = body as Partial<Problem> | null;
  return typeof b === 'object' && b !== null && typeof b.status === 'number' && typeof b.code === 'string' && typeof b.detail === 'string';
}

/** awaitResult on an execution that ended FAILED or CANCELLED: the execution says why. */
export class ExecutionFailedError extends Error {
  readonly executionId: string;
  readonly status: 'FAILED' | 'CANCELLED';
  /** The execution's error record ({code, message, …}), when it has one. */
  readonly error: unknown;

  constructor(executionId: string, status: 'FAILED' | 'CANCELLED', error: unknown) {
    const message = (error as { message?: unknown } | undefined)?.message;
    super(`execution '${executionId}' ended ${status}${typeof message === 'string' ? `: ${message}` : ''}`);
    this.name = 'ExecutionFailedError';
    this.executionId = executionId;
    this.status = status;
    this.error = error;
  }
}
