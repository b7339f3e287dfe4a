/**
 * The built-in offline provider: no network, no key, same answer for the same
 * prompt. It exists so demos and tests run anywhere; every answer says plainly
 * that it does not come from a language model, except a structured one, which
 * is built from its schema (and the output's `provider: local` says where it came from).
 */
import { createHash } from 'node:crypto';
import { countPromptTokens, countTokens, truncateToTokens } from '../tokens.js';
import type {
  ChatMessage,
  LlmProvider,
  ProviderCompletion,
  ProviderConfig,
  ProviderRequest,
  ProviderStreamPart,
} from '../types.js';
import { LlmCancelledError } from '../errors.js';
import { schemaExample } from './schemaExample.js';

export const LOCAL_NOTICE = '[local provider: not a language model]';

export const LOCAL_PROVIDER_CONFIG: ProviderConfig = {
  name: 'local',
  kind: 'local',
  models: ['echo'],
  aliases: {},
  timeoutMs: 60_000,
  maxRetries: 0,
  enabled: true,
};

export class LocalProvider implements LlmProvider {
  readonly config: ProviderConfig;

  constructor(config: Partial<ProviderConfig> = {}) {
    // Name, kind and models are fixed: the local provider is always `local/echo`.
    this.config = { ...LOCAL_PROVIDER_CONFIG, ...config, name: 'local', kind: 'local', models: ['echo'], enabled: true };
  }

  async complete(request: ProviderRequest, signal: AbortSignal): Promise<ProviderCompletion> {
    if (signal.aborted) throw new LlmCancelledError('local');
    return localAnswer(request);
  }

  async openStream(request: ProviderRequest, signal: AbortSignal): Promise<AsyncIterable<ProviderStreamPart>> {
    const answer = await this.complete(request, signal);
    return (async function* () {
      // Word-sized deltas, so streaming consumers see more than one chunk.
      for (const piece of answer.text.match(/\S+\s*/g) ?? []) {
        if (signal.aborted) throw new LlmCancelledError('local');
        yield { type: 'delta', text: piece } satisfies ProviderStreamPart;
      }
      yield { type: 'finish', finishReason: answer.finishReason } satisfies ProviderStreamPart;
      yield { type: 'usage', usage: answer.usage } satisfies ProviderStreamPart;
    })();
  }
}

/** The deterministic answer: an echo of the last user message plus a digest of the whole prompt. */
export function localAnswer(request: ProviderRequest): ProviderCompletion {
  const lastUser = [...request.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  const excerpt = lastUser.replace(/\s+/g, ' ').trim().slice(0, 500);
  const digest = promptDigest(request.messages);
  const promptTokens = countPromptTokens(request.messages);

  let text: string;
  let finishReason: ProviderCompletion['finishReason'] = 'stop';
  if (request.schema) {
    // Built from the schema (schemaExample.ts); a notice field could break `additionalProperties: false`.
    const prompt = request.messages.find((m) => m.role === 'user')?.content ?? '';
    text = JSON.stringify(schemaExample(request.schema.schema, prompt));
  } else if (request.json) {
    // Valid JSON is the contract of json mode, so it is never truncated.
    text = JSON.stringify({ notice: LOCAL_NOTICE, echo: excerpt, words: countWords(lastUser), digest });
  } else {
    text = `${LOCAL_NOTICE} You said: "${excerpt}" (${countWords(lastUser)} words, prompt digest ${digest})`;
    if (request.maxTokens !== undefined) {
      const cut = truncateToTokens(text, request.maxTokens);
      text = cut.text;
      if (cut.truncated) finishReason = 'length';
    }
  }
  const completionTokens = countTokens(text);
  return { text, finishReason, usage: { promptTokens, completionTokens, totalTokens: promptTokens + completionTokens } };
}

function promptDigest(messages: readonly ChatMessage[]): string {
  const hash = createHash('sha256');
  for (const m of messages) hash.update(`${m.role}\u0000${m.content}\u0000`);
  return hash.digest('hex').slice(0, 12);
}

function countWords(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}
