/** When to try again: the upstream's Retry-After if it gave one, else exponential backoff. Pure. */

export interface BackoffPolicy {
  initialDelayMs: number;
  factor: number;
  maxDelayMs: number;
  /** Up to this fraction is taken off each delay at random, so clients do not retry in lockstep. */
  jitter: number;
}

/** The openai client's defaults: 0.5 s doubling up to 8 s, minus up to 25 %. */
export const DEFAULT_BACKOFF: BackoffPolicy = { initialDelayMs: 500, factor: 2, maxDelayMs: 8000, jitter: 0.25 };

/** Delay after failed attempt number `attempt` (1-based). `random` in [0, 1). */
export function backoffDelayMs(policy: BackoffPolicy, attempt: number, random: () => number = Math.random): number {
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** (attempt - 1));
  return Math.round(base * (1 - random() * policy.jitter));
}

interface HeaderLookup {
  get(name: string): string | null;
}

/**
 * The wait an HTTP response asks for, in ms: `retry-after-ms` (non-standard,
 * OpenAI sends it), then `Retry-After` as seconds or as an HTTP date.
 * Undefined when absent or unparseable; never negative.
 */
export function parseRetryAfter(headers: HeaderLookup | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '' && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
