/**
 * Our errors → OpenAI-style error responses, in one place. Statuses: 400 bad
 * request, 404 unknown or disabled model, 429 rate limited, 502 upstream
 * failure, 503 upstream unreachable, 504 upstream timeout. Internal messages
 * and upstream credential errors are not passed to clients.
 */
import { SmartSpecError } from '../../errors.js';
import { LlmCancelledError, ModelNotFoundError, ProviderDisabledError, ProviderError, ProviderErrorCode } from '../errors.js';

export interface OpenAiErrorBody {
  error: { message: string; type: string; code: string | null; param: string | null };
}

export interface OpenAiErrorResponse {
  status: number;
  body: OpenAiErrorBody;
  headers: Record<string, string>;
}

export function openAiError(status: number, message: string, type: string, code: string | null, param: string | null = null, headers: Record<string, string> = {}): OpenAiErrorResponse {
  return { status, body: { error: { message, type, code, param } }, headers };
}

export function toOpenAiError(err: unknown): OpenAiErrorResponse {
  if (err instanceof ModelNotFoundError) return openAiError(404, err.message, 'invalid_request_error', 'model_not_found', 'model');
  if (err instanceof ProviderDisabledError) return openAiError(404, err.message, 'invalid_request_error', 'provider_disabled', 'model');
  if (err instanceof ProviderError) return fromProviderError(err);
  // The client is gone; 499 is only for logs.
  if (err instanceof LlmCancelledError) return openAiError(499, err.message, 'request_cancelled', 'cancelled');
  if (err instanceof SmartSpecError) return openAiError(500, err.message, 'server_error', err.code.toLowerCase());
  return openAiError(500, 'internal error', 'server_error', null);
}

function fromProviderError(err: ProviderError): OpenAiErrorResponse {
  switch (err.code) {
    case ProviderErrorCode.RateLimited: {
      const headers: Record<string, string> = err.retryAfterMs !== undefined ? { 'retry-after': String(Math.ceil(err.retryAfterMs / 1000)) } : {};
      return openAiError(429, err.message, 'rate_limit_error', 'rate_limit_exceeded', null, headers);
    }
    case ProviderErrorCode.Timeout:
      return openAiError(504, err.message, 'upstream_error', 'upstream_timeout');
    case ProviderErrorCode.Connection:
      return openAiError(503, err.message, 'upstream_error', 'upstream_unavailable');
    case ProviderErrorCode.Rejected: {
      const status = err.status ?? 502;
      // Our key was refused: a server-side problem, and the upstream text may quote the key.
      if (status === 401 || status === 403) {
        return openAiError(502, `provider '${err.provider}' rejected the server's credentials (${status})`, 'upstream_error', 'upstream_auth_failed');
      }
      const upstream = (err.details?.upstream ?? {}) as { type?: string; code?: string | null; param?: string | null };
      return openAiError(status, err.message, upstream.type ?? 'invalid_request_error', upstream.code ?? null, upstream.param ?? null);
    }
    default:
      return openAiError(err.status === 503 ? 503 : 502, err.message, 'upstream_error', 'upstream_error');
  }
}
