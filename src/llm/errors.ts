/**
 * Errors of the LLM layer. Upstream (openai client, fetch) failures become a
 * ProviderError at the provider boundary; its `code` says what happened and
 * its `retryable` flag is what the router and the engine's retry policy read.
 */
import { SmartSpecError } from '../errors.js';

/** Codes of ProviderError, one per kind of upstream failure. */
export const ProviderErrorCode = {
  RateLimited: 'LLM_RATE_LIMITED',
  /** 408, 409, 5xx, or an error event in the middle of a stream. */
  Upstream: 'LLM_UPSTREAM_ERROR',
  /** Other 4xx: the upstream refused the request; retrying will not help. */
  Rejected: 'LLM_UPSTREAM_REJECTED',
  Connection: 'LLM_CONNECTION_ERROR',
  Timeout: 'LLM_TIMEOUT',
} as const;
export type ProviderErrorCode = (typeof ProviderErrorCode)[keyof typeof ProviderErrorCode];

export interface ProviderErrorOptions {
  provider: string;
  model?: string;
  status?: number;
  retryable: boolean;
  /** What the upstream asked us to wait (Retry-After / retry-after-ms). */
  retryAfterMs?: number;
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class ProviderError extends SmartSpecError {
  readonly provider: string;
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(code: ProviderErrorCode, message: string, options: ProviderErrorOptions) {
    super(code, message, {
      retryable: options.retryable,
      cause: options.cause,
      details: {
        provider: options.provider,
        ...(options.model !== undefined ? { model: options.model } : {}),
        ...(options.status !== undefined ? { status: options.status } : {}),
        ...(options.retryAfterMs !== undefined ? { retryAfterMs: options.retryAfterMs } : {}),
        ...options.details,
      },
    });
    this.provider = options.provider;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

export class ModelNotFoundError extends SmartSpecError {
  constructor(model: string, hint?: string) {
    super('LLM_MODEL_NOT_FOUND', `model '${model}' is not served by any enabled provider${hint ? `; ${hint}` : ''}`, {
      details: { model },
    });
  }
}

export class ProviderDisabledError extends SmartSpecError {
  constructor(provider: string, model: string, reason: string) {
    super('LLM_PROVIDER_DISABLED', `model '${model}' belongs to provider '${provider}', which is disabled: ${reason}`, {
      details: { provider, model, reason },
    });
  }
}

export interface BudgetFacts {
  maxTokens?: number;
  usedTokens?: number;
  remainingTokens: number;
  /** Set when the step alone needs more than remains. */
  neededTokens?: number;
}

export class BudgetExceededError extends SmartSpecError {
  constructor(facts: BudgetFacts) {
    super(
      'BUDGET_EXCEEDED',
      facts.neededTokens === undefined
        ? `token budget exhausted: ${facts.usedTokens} of ${facts.maxTokens} tokens used`
        : `token budget too small: the prompt alone needs about ${facts.neededTokens} tokens, ${facts.remainingTokens} remain`,
      { details: { ...facts } },
    );
  }
}

/** The caller's AbortSignal fired (execution cancelled, HTTP client gone). */
export class LlmCancelledError extends SmartSpecError {
  constructor(provider?: string) {
    super('LLM_CANCELLED', 'LLM request cancelled', { details: provider ? { provider } : undefined });
  }
}

/** json mode was asked for and the answer is not JSON; retrying the same prompt rarely helps. */
export class LlmOutputError extends SmartSpecError {
  /** The full text the model returned. */
  readonly raw: string;
  constructor(message: string, raw: string, details: Record<string, unknown> = {}) {
    // The log record keeps a bounded excerpt; the property keeps everything.
    super('LLM_INVALID_JSON', message, { details: { ...details, raw: raw.slice(0, 4000), rawLength: raw.length } });
    this.raw = raw;
  }
}

/**
 * Every answer a schema step got was not JSON or did not match its schema.
 * Not retryable: the step already asked as often as its retry.maxAttempts allows.
 */
export class LlmSchemaMismatchError extends SmartSpecError {
  /** The last answer, in full. */
  readonly raw: string;
  constructor(asks: number, problems: string[], raw: string, details: Record<string, unknown> = {}) {
    const shown = problems.slice(0, 3).join('; ') + (problems.length > 3 ? `; and ${problems.length - 3} more` : '');
    super('LLM_SCHEMA_MISMATCH', `no answer matched the step's schema in ${asks} ${asks === 1 ? 'ask' : 'asks'}; the last one: ${shown}`, {
      details: { ...details, asks, problems, raw: raw.slice(0, 4000), rawLength: raw.length },
    });
    this.raw = raw;
  }
}

export class LlmConfigError extends SmartSpecError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('LLM_CONFIG_INVALID', message, { details });
  }
}
