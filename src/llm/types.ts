/** Shapes shared by the LLM layer: requests, results, provider configuration. */

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Set when the upstream reported no usage and we counted it ourselves. */
  estimated?: true;
}

/** What a caller (the engine, the proxy) asks the router for. */
export interface CompletionRequest {
  /** `provider/model`, an alias, or a bare model name served by a provider. */
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  /** Ask for a JSON object (`response_format: json_object` upstream). */
  json?: boolean;
  /** Ask for a JSON object matching a schema (structured output where the provider supports it). */
  schema?: StructuredOutput;
  /** Models tried in order after the model fails with a retryable error, before the configured fallbacks. */
  fallbackModels?: string[];
  /** Use the upstream's streaming protocol (complete() still returns one result). */
  stream?: boolean;
}

/** OpenAI's `response_format: {type: 'json_schema', json_schema: {name, schema}}`. */
export interface StructuredOutput {
  /** Letters, digits, `_` and `-`, at most 64. */
  name: string;
  schema: Record<string, unknown>;
}

export type FinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls' | null;

/** One try against one provider; the router reports all of them. */
export interface LlmAttempt {
  provider: string;
  model: string;
  /** 1-based, per provider. */
  attempt: number;
  ok: boolean;
  latencyMs: number;
  code?: string;
  status?: number;
  /** The wait before the next attempt (Retry-After or backoff), when there is one. */
  waitMs?: number;
}

export interface CompletionResult {
  text: string;
  finishReason: FinishReason;
  /** The provider that answered (after fallback). */
  provider: string;
  /** The real model name sent to that provider (aliases resolved). */
  model: string;
  usage: Usage;
  /** Wall time of the whole call, retries and fallbacks included. */
  latencyMs: number;
  attempts: LlmAttempt[];
}

/** Events of a streamed completion, in order: start, delta*, end. */
export type CompletionStreamEvent =
  | { type: 'start'; provider: string; model: string }
  | { type: 'delta'; text: string }
  | { type: 'end'; result: CompletionResult };

export type ProviderKind = 'openai' | 'openai-compatible' | 'ollama' | 'local';

export interface ProviderConfig {
  /** Unique; the `provider/` prefix of model ids. */
  name: string;
  kind: ProviderKind;
  /** OpenAI-protocol base URL ending in /v1; unused by `local`. */
  baseURL?: string;
  apiKey?: string;
  /** Model names it serves; `'*'` passes any name through. */
  models: string[];
  /** alias → real model name at this provider. */
  aliases: Record<string, string>;
  /** Per attempt, whole response included (streams too). */
  timeoutMs: number;
  /** Retries after the first attempt on 408/409/429/5xx/connection errors/timeouts. */
  maxRetries: number;
  /** Whether it takes `response_format: json_schema` (default true); otherwise JSON mode with the schema in the prompt. */
  structuredOutputs?: boolean;
  enabled: boolean;
  /** Why it is disabled and how to enable it; shown in errors. */
  disabledReason?: string;
}

/** A request as a provider sees it: the model is the provider's own name for it. */
export interface ProviderRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  json?: boolean;
  schema?: StructuredOutput;
}

export interface ProviderCompletion {
  text: string;
  finishReason: FinishReason;
  usage: Usage;
}

export type ProviderStreamPart =
  | { type: 'delta'; text: string }
  | { type: 'finish'; finishReason: FinishReason }
  | { type: 'usage'; usage: Usage };

/** One backend. Implementations convert their failures to ProviderError. */
export interface LlmProvider {
  readonly config: ProviderConfig;
  complete(request: ProviderRequest, signal: AbortSignal): Promise<ProviderCompletion>;
  /** Resolves once the upstream accepted the request (status known), so failures before any data can be retried. */
  openStream(request: ProviderRequest, signal: AbortSignal): Promise<AsyncIterable<ProviderStreamPart>>;
}
