/**
 * A provider speaking the chat-completions protocol (OpenAI itself, any
 * OpenAI-compatible server, Ollama's /v1 endpoint) through the official client.
 * The client's own retries are off (maxRetries: 0): the router retries, so that
 * backoff, Retry-After and fallback happen in one observable place.
 */
import OpenAI from 'openai';
import type { ChatCompletionCreateParamsBase } from 'openai/resources/chat/completions';
import { countPromptTokens, countTokens } from '../tokens.js';
import { LlmCancelledError } from '../errors.js';
import type {
  ChatMessage,
  FinishReason,
  LlmProvider,
  ProviderCompletion,
  ProviderConfig,
  ProviderRequest,
  ProviderStreamPart,
  Usage,
} from '../types.js';
import { toProviderError } from './openaiErrors.js';

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export class OpenAiProtocolProvider implements LlmProvider {
  readonly config: ProviderConfig;
  private readonly client: OpenAI;

  constructor(config: ProviderConfig, options: { fetch?: Fetch } = {}) {
    this.config = config;
    const foreign = config.kind !== 'openai';
    this.client = new OpenAI({
      // Local servers (Ollama, vLLM) ignore the key, but the client insists on one.
      apiKey: config.apiKey || 'unused',
      baseURL: config.baseURL,
      timeout: config.timeoutMs,
      maxRetries: 0,
      // OPENAI_ORG_ID / OPENAI_PROJECT_ID belong to OpenAI; never send them to other hosts.
      ...(foreign ? { organization: null, project: null } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
    });
  }

  async complete(request: ProviderRequest, signal: AbortSignal): Promise<ProviderCompletion> {
    try {
      const res = await this.client.chat.completions.create({ ...this.body(request), stream: false }, { signal });
      const choice = res.choices[0];
      const text = choice?.message?.content ?? '';
      return { text, finishReason: (choice?.finish_reason as FinishReason) ?? null, usage: toUsage(res.usage) ?? estimate(request, text) };
    } catch (err) {
      throw toProviderError(err, this.config.name, request.model);
    }
  }

  async openStream(request: ProviderRequest, signal: AbortSignal): Promise<AsyncIterable<ProviderStreamPart>> {
    const { name } = this.config;
    let stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>;
    try {
      stream = await this.client.chat.completions.create(
        { ...this.body(request), stream: true, stream_options: { include_usage: true } },
        { signal },
      );
    } catch (err) {
      throw toProviderError(err, name, request.model);
    }
    return (async function* () {
      let text = '';
      let usage: Usage | undefined;
      try {
        for await (const chunk of stream) {
          usage = toUsage(chunk.usage) ?? usage;
          const choice = chunk.choices[0];
          const delta = choice?.delta?.content;
          if (delta) {
            text += delta;
            yield { type: 'delta', text: delta } satisfies ProviderStreamPart;
          }
          if (choice?.finish_reason) yield { type: 'finish', finishReason: choice.finish_reason as FinishReason } satisfies ProviderStreamPart;
        }
      } catch (err) {
        throw toProviderError(err, name, request.model);
      }
      // The client's stream ends quietly when aborted; an aborted stream is not a complete answer.
      if (signal.aborted) throw new LlmCancelledError(name);
      yield { type: 'usage', usage: usage ?? estimate(request, text) } satisfies ProviderStreamPart;
    })();
  }

  private body(request: ProviderRequest): ChatCompletionCreateParamsBase {
    const { schema } = request;
    const structured = schema !== undefined && this.config.structuredOutputs !== false;
    const messages = schema && !structured ? withSchemaInstruction(request.messages, schema.schema) : request.messages;
    return {
      model: request.model,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
      ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
      // OpenAI's newer models refuse max_tokens; compatible servers mostly only know max_tokens.
      ...(request.maxTokens !== undefined
        ? this.config.kind === 'openai'
          ? { max_completion_tokens: request.maxTokens }
          : { max_tokens: request.maxTokens }
        : {}),
      // Not strict: strict mode refuses most schemas written for validation (it wants every property required and
      // additionalProperties false); the answer is checked against the schema either way (runLlmStep).
      ...(structured
        ? { response_format: { type: 'json_schema' as const, json_schema: { name: schema.name, schema: schema.schema } } }
        : request.json || schema
          ? { response_format: { type: 'json_object' as const } }
          : {}),
    };
  }
}

/** Without structured outputs, JSON mode does the rest: the schema goes into the system message. */
function withSchemaInstruction(messages: ChatMessage[], schema: Record<string, unknown>): ChatMessage[] {
  const instruction = `Respond with a single JSON object that matches this JSON Schema:\n${JSON.stringify(schema)}`;
  const [first, ...rest] = messages;
  if (first?.role === 'system') return [{ role: 'system', content: `${first.content}\n\n${instruction}` }, ...rest];
  return [{ role: 'system', content: instruction }, ...messages];
}

function toUsage(u: OpenAI.CompletionUsage | null | undefined): Usage | undefined {
  if (!u) return undefined;
  return { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens, totalTokens: u.total_tokens };
}

function estimate(request: ProviderRequest, text: string): Usage {
  const promptTokens = countPromptTokens(request.messages);
  const completionTokens = countTokens(text);
  return { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens, estimated: true };
}
