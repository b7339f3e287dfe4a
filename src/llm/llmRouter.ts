/**
 * The router: resolves a model name to a provider, retries transient failures
 * with backoff (the upstream's Retry-After when it sends one), then falls back
 * along the configured chain. Cancellation and per-attempt timeouts are
 * AbortSignals, so an aborted call also aborts the HTTP request in flight.
 * Streams are retried only until the upstream accepted the request: once text
 * has reached the caller, a failure is final.
 */
import { performance } from 'node:perf_hooks';
import { SmartSpecError } from '../errors.js';
import { attemptScope, sleep, type AttemptScope } from './abort.js';
import { DEFAULT_BACKOFF, backoffDelayMs, type BackoffPolicy } from './backoff.js';
import type { ProviderSet } from './config/createProviders.js';
import { LlmCancelledError, ProviderError, ProviderErrorCode } from './errors.js';
import { listModels, resolveModel, type ResolvedModel } from './resolveModel.js';
import type {
  CompletionRequest,
  CompletionResult,
  CompletionStreamEvent,
  FinishReason,
  LlmAttempt,
  LlmProvider,
  ProviderRequest,
  Usage,
} from './types.js';

export interface LlmRouterOptions {
  backoff?: BackoffPolicy;
  /** The longest Retry-After honoured; a longer one moves on to the next fallback (or fails). Default 60 s. */
  maxRetryAfterMs?: number;
  /** Jitter source, in [0, 1). */
  random?: () => number;
  /** Called after every attempt (failed, succeeded, or a skipped fallback with attempt 0). */
  onAttempt?: (attempt: LlmAttempt) => void;
}

export interface CallOptions {
  /** Aborts the call, the request in flight and any backoff wait. */
  signal?: AbortSignal;
  /** Per attempt; overrides the provider's timeoutMs. */
  timeoutMs?: number;
  /** With `stream: true`, receives the text as it arrives. */
  onDelta?: (text: string) => void;
}

interface Target {
  provider: LlmProvider;
  model: string;
}

interface Opened<T> extends Target {
  value: T;
  scope: AttemptScope;
  attempts: LlmAttempt[];
}

export class LlmRouter {
  private readonly byName: Map<string, LlmProvider>;

  constructor(
    readonly set: ProviderSet,
    private readonly options: LlmRouterOptions = {},
  ) {
    this.byName = new Map(set.providers.map((p) => [p.config.name, p]));
  }

  get providers(): readonly LlmProvider[] {
    return this.set.providers;
  }

  /** Throws ModelNotFoundError or ProviderDisabledError. */
  resolve(model: string): ResolvedModel {
    return resolveModel(model, this.set.providers.map((p) => p.config), this.set.aliases);
  }

  /** Ids clients may ask for: `provider/model` of enabled providers, and aliases. */
  listModels(): { id: string; provider: string }[] {
    return listModels(this.set.providers.map((p) => p.config), this.set.aliases);
  }

  async complete(request: CompletionRequest, options: CallOptions = {}): Promise<CompletionResult> {
    if (request.stream) {
      for await (const event of this.stream(request, options)) {
        if (event.type === 'delta') options.onDelta?.(event.text);
        if (event.type === 'end') return event.result;
      }
      throw new LlmCancelledError();
    }
    const started = performance.now();
    const opened = await this.open(request, options, (p, req, signal) => p.complete(req, signal));
    opened.scope.dispose();
    return {
      ...opened.value,
      provider: opened.provider.config.name,
      model: opened.model,
      latencyMs: Math.round(performance.now() - started),
      attempts: opened.attempts,
    };
  }

  async *stream(request: CompletionRequest, options: CallOptions = {}): AsyncGenerator<CompletionStreamEvent> {
    const started = performance.now();
    const opened = await this.open(request, options, (p, req, signal) => p.openStream(req, signal));
    const { provider, model, scope } = opened;
    const name = provider.config.name;
    let text = '';
    let finishReason: FinishReason = null;
    let usage: Usage | undefined;
    let done = false;
    try {
      yield { type: 'start', provider: name, model };
      try {
        for await (const part of opened.value) {
          if (part.type === 'delta') {
            text += part.text;
            yield { type: 'delta', text: part.text };
          } else if (part.type === 'finish') finishReason = part.finishReason;
          else usage = part.usage;
        }
      } catch (err) {
        throw classify(err, scope, options, name, model, this.timeoutFor(provider, options));
      }
      if (scope.signal.aborted) throw classify(new LlmCancelledError(name), scope, options, name, model, this.timeoutFor(provider, options));
      done = true;
    } finally {
      // A consumer that stops early must not leave the upstream response open.
      if (!done) scope.abort();
      scope.dispose();
    }
    const result: CompletionResult = {
      text,
      finishReason,
      provider: name,
      model,
      usage: usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0, estimated: true },
      latencyMs: Math.round(performance.now() - started),
      attempts: opened.attempts,
    };
    yield { type: 'end', result };
  }

  /** Runs `call` along the fallback chain, with retries per provider; returns the first success with its live scope. */
  private async open<T>(
    request: CompletionRequest,
    options: CallOptions,
    call: (provider: LlmProvider, request: ProviderRequest, signal: AbortSignal) => Promise<T>,
  ): Promise<Opened<T>> {
    const primary = this.resolve(request.model);
    const attempts: LlmAttempt[] = [];
    const record = (a: LlmAttempt) => {
      attempts.push(a);
      this.options.onAttempt?.(a);
    };
    let last: unknown;

    for (const target of this.chain(request, primary, record)) {
      const { provider, model } = target;
      const name = provider.config.name;
      const timeoutMs = this.timeoutFor(provider, options);
      const maxAttempts = provider.config.maxRetries + 1;
      for (let n = 1; n <= maxAttempts; n++) {
        if (options.signal?.aborted) throw new LlmCancelledError(name);
        const scope = attemptScope(options.signal, timeoutMs);
        const started = performance.now();
        try {
          const value = await call(provider, toProviderRequest(request, model), scope.signal);
          record({ provider: name, model, attempt: n, ok: true, latencyMs: Math.round(performance.now() - started) });
          return { provider, model, value, scope, attempts };
        } catch (raw) {
          scope.dispose();
          const err = classify(raw, scope, options, name, model, timeoutMs);
          if (err instanceof LlmCancelledError) throw err;
          const wait = isRetryable(err) && n < maxAttempts ? this.waitFor(err, n) : undefined;
          record({
            provider: name,
            model,
            attempt: n,
            ok: false,
            latencyMs: Math.round(performance.now() - started),
            ...errorFacts(err),
            ...(wait !== undefined ? { waitMs: wait } : {}),
          });
          // Only transient failures are retried or handed to a fallback.
          if (!isRetryable(err)) throw withAttempts(err, attempts);
          last = err;
          if (wait === undefined) break;
          await sleep(wait, options.signal);
        }
      }
    }
    throw withAttempts(last, attempts);
  }

  /**
   * The primary target, then the request's own fallbackModels, then the fallbacks configured
   * for the name asked for, for what it resolved to, and for `*`.
   */
  private *chain(request: CompletionRequest, primary: ResolvedModel, record: (a: LlmAttempt) => void): Generator<Target> {
    const key = `${primary.provider}/${primary.model}`;
    const { fallbacks } = this.set;
    const requested = request.model.trim();
    const names = [...(request.fallbackModels ?? []), ...(fallbacks[requested] ?? []), ...(fallbacks[key] ?? []), ...(fallbacks['*'] ?? [])];
    const seen = new Set<string>([key]);
    yield { provider: this.byName.get(primary.provider)!, model: primary.model };
    for (const name of names) {
      let resolved: ResolvedModel;
      try {
        resolved = this.resolve(name);
      } catch (err) {
        // A fallback to a disabled or absent provider is skipped, and the skip is reported.
        record({ provider: '', model: name, attempt: 0, ok: false, latencyMs: 0, ...errorFacts(err) });
        continue;
      }
      const id = `${resolved.provider}/${resolved.model}`;
      if (seen.has(id)) continue;
      seen.add(id);
      yield { provider: this.byName.get(resolved.provider)!, model: resolved.model };
    }
  }

  private waitFor(err: unknown, attempt: number): number | undefined {
    const retryAfter = err instanceof ProviderError ? err.retryAfterMs : undefined;
    if (retryAfter !== undefined) return retryAfter <= (this.options.maxRetryAfterMs ?? 60_000) ? retryAfter : undefined;
    return backoffDelayMs(this.options.backoff ?? DEFAULT_BACKOFF, attempt, this.options.random);
  }

  private timeoutFor(provider: LlmProvider, options: CallOptions): number {
    return options.timeoutMs ?? provider.config.timeoutMs;
  }
}

function toProviderRequest(request: CompletionRequest, model: string): ProviderRequest {
  return {
    model,
    messages: request.messages,
    ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
    ...(request.maxTokens !== undefined ? { maxTokens: request.maxTokens } : {}),
    ...(request.json ? { json: true } : {}),
    ...(request.schema ? { schema: request.schema } : {}),
  };
}

/** The caller's abort wins, then our timeout, then what the provider said. */
function classify(raw: unknown, scope: AttemptScope, options: CallOptions, provider: string, model: string, timeoutMs: number): unknown {
  if (options.signal?.aborted) return new LlmCancelledError(provider);
  if (scope.timedOut) {
    return new ProviderError(ProviderErrorCode.Timeout, `${provider}: no complete answer within ${timeoutMs} ms`, {
      provider,
      model,
      retryable: true,
      details: { timeoutMs },
    });
  }
  return raw;
}

function isRetryable(err: unknown): boolean {
  return err instanceof SmartSpecError && err.retryable;
}

function errorFacts(err: unknown): { code?: string; status?: number } {
  if (err instanceof ProviderError) return { code: err.code, ...(err.status !== undefined ? { status: err.status } : {}) };
  if (err instanceof SmartSpecError) return { code: err.code };
  return { code: 'ERROR' };
}

/** The last failure, with the whole attempt history in its details (for the event log and the proxy). */
function withAttempts(err: unknown, attempts: LlmAttempt[]): unknown {
  if (!(err instanceof ProviderError)) return err;
  const tried = attempts.filter((a) => a.attempt > 0).length;
  const message = tried > 1 ? `${err.message} (after ${tried} attempts)` : err.message;
  const { provider: _p, model, status: _s, retryAfterMs: _r, ...rest } = err.details ?? {};
  return new ProviderError(err.code as ProviderErrorCode, message, {
    provider: err.provider,
    model: typeof model === 'string' ? model : undefined,
    status: err.status,
    retryable: err.retryable,
    retryAfterMs: err.retryAfterMs,
    cause: err,
    details: { ...rest, attempts },
  });
}
