/**
 * Errors only the HTTP edge raises (transport-level problems). They extend the
 * product's SmartSpecError so problem.ts renders every error the same way.
 */
import { SmartSpecError } from '../errors.js';

export interface FieldIssue {
  path: string;
  message: string;
}

/** A route's zod schema rejected the body, query or params. */
export class RequestValidationError extends SmartSpecError {
  readonly issues: FieldIssue[];
  constructor(issues: FieldIssue[]) {
    super('VALIDATION_FAILED', issues.map((i) => `${i.path}: ${i.message}`).join('; '), { details: { issues } });
    this.issues = issues;
  }
}

export class PayloadTooLargeError extends SmartSpecError {
  constructor(limitBytes: number) {
    super('PAYLOAD_TOO_LARGE', `request body exceeds the limit of ${limitBytes} bytes`, { details: { limitBytes } });
  }
}

export class UnsupportedMediaTypeError extends SmartSpecError {
  constructor(message: string) {
    super('UNSUPPORTED_MEDIA_TYPE', message);
  }
}

export class MalformedJsonError extends SmartSpecError {
  constructor(reason: string) {
    super('MALFORMED_JSON', `request body is not valid JSON: ${reason}`);
  }
}

export class RateLimitedError extends SmartSpecError {
  readonly retryAfterSeconds: number;
  constructor(limit: number, windowMs: number, retryAfterSeconds: number) {
    super('RATE_LIMITED', `rate limit of ${limit} requests per ${windowMs} ms exceeded; retry in ${retryAfterSeconds} s`, {
      retryable: true,
      details: { limit, windowMs, retryAfterSeconds },
    });
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class NotReadyError extends SmartSpecError {
  constructor(reason: string) {
    super('NOT_READY', `service not ready: ${reason}`, { retryable: true });
  }
}
