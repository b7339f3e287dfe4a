/** Retry policy: exponential backoff, as Step Functions' Retry fields. Pure. */
import type { RetryPolicy } from './definition.js';
import type { ErrorInfo } from './events.js';

export const NO_RETRY: RetryPolicy = { maxAttempts: 1, initialDelayMs: 0, backoffRate: 1, maxDelayMs: 0 };

/** Whether a failed attempt (1-based) may be followed by another. */
export function canRetry(policy: RetryPolicy | undefined, attempt: number, error: ErrorInfo): boolean {
  return error.retryable && attempt < (policy ?? NO_RETRY).maxAttempts;
}

/** Delay before the attempt after `attempt` (1-based): initial × rate^(attempt-1), capped. */
export function retryDelayMs(policy: RetryPolicy | undefined, attempt: number): number {
  const p = policy ?? NO_RETRY;
  if (p.initialDelayMs === 0) return 0;
  const delay = p.initialDelayMs * p.backoffRate ** (attempt - 1); // Infinity after enough attempts: capped below
  return Math.min(p.maxDelayMs, Math.round(delay));
}
