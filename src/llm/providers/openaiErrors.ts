/**
 * The boundary between the openai client's errors and ours: every failure of
 * an OpenAI-protocol call leaves the provider as a ProviderError (or
 * LlmCancelledError), with the upstream's status, Retry-After and error body kept.
 * Upstream texts may echo a credential (the API key, an Authorization header):
 * they are redacted here, before the message can be recorded, logged or answered.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import { parseRetryAfter } from '../backoff.js';
import { LlmCancelledError, ProviderError, ProviderErrorCode } from '../errors.js';
import { redactErrorText } from '../../secrets/redact.js';

export function toProviderError(err: unknown, provider: string, model: string): ProviderError | LlmCancelledError {
  if (err instanceof ProviderError || err instanceof LlmCancelledError) return err;
  // Our own signal fired; the router knows whether that was a timeout or a cancellation.
  if (err instanceof APIUserAbortError) return new LlmCancelledError(provider);
  if (err instanceof APIConnectionTimeoutError) {
    return new ProviderError(ProviderErrorCode.Timeout, `${provider}: request timed out`, { provider, model, retryable: true, cause: err });
  }
  if (err instanceof APIConnectionError) {
    return new ProviderError(ProviderErrorCode.Connection, `${provider}: cannot reach the upstream (${redactErrorText(connectionReason(err))})`, {
      provider,
      model,
      retryable: true,
      cause: err,
    });
  }
  if (err instanceof APIError) {
    const upstream = { type: err.type, code: err.code, param: err.param };
    if (err.status === undefined) {
      // An error event inside a stream.
      return new ProviderError(ProviderErrorCode.Upstream, `${provider}: ${redactErrorText(err.message)}`, { provider, model, retryable: true, cause: err, details: { upstream } });
    }
    const status = err.status;
    const retryAfterMs = parseRetryAfter(err.headers);
    const code =
      status === 429 ? ProviderErrorCode.RateLimited
      : status === 408 || status === 409 || status >= 500 ? ProviderErrorCode.Upstream
      : ProviderErrorCode.Rejected;
    // The same rule as the openai client's shouldRetry, x-should-retry included.
    const shouldRetry = err.headers?.get('x-should-retry');
    const retryable = shouldRetry === 'true' ? true : shouldRetry === 'false' ? false : code !== ProviderErrorCode.Rejected;
    return new ProviderError(code, `${provider}: ${redactErrorText(err.message)}`, { provider, model, status, retryable, retryAfterMs, cause: err, details: { upstream } });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ProviderError(ProviderErrorCode.Upstream, `${provider}: unexpected response (${redactErrorText(message)})`, { provider, model, retryable: true, cause: err });
}

function connectionReason(err: APIConnectionError): string {
  const cause = err.cause as { cause?: { code?: string }; message?: string } | undefined;
  return cause?.cause?.code ?? cause?.message ?? err.message;
}
