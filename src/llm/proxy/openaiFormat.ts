/** Response bodies in the chat-completions wire format. Pure. */
import { randomUUID } from 'node:crypto';
import type { CompletionResult, FinishReason, Usage } from '../types.js';

export interface ResponseIdentity {
  id: string;
  created: number;
  /** `provider/model`, so clients see who answered. */
  model: string;
}

export function newIdentity(provider: string, model: string): ResponseIdentity {
  return { id: `chatcmpl-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: `${provider}/${model}` };
}

export function toWireUsage(u: Usage): { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens };
}

export function completionBody(who: ResponseIdentity, result: CompletionResult) {
  return {
    id: who.id,
    object: 'chat.completion' as const,
    created: who.created,
    model: who.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant' as const, content: result.text, refusal: null },
        finish_reason: result.finishReason ?? 'stop',
        logprobs: null,
      },
    ],
    usage: toWireUsage(result.usage),
  };
}

export function chunkBody(who: ResponseIdentity, delta: { role?: 'assistant'; content?: string }, finishReason: FinishReason = null) {
  return {
    id: who.id,
    object: 'chat.completion.chunk' as const,
    created: who.created,
    model: who.model,
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
  };
}

/** The extra last chunk OpenAI sends with stream_options.include_usage. */
export function usageChunkBody(who: ResponseIdentity, usage: Usage) {
  return { id: who.id, object: 'chat.completion.chunk' as const, created: who.created, model: who.model, choices: [], usage: toWireUsage(usage) };
}

export function sse(data: unknown): string {
  return `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}
