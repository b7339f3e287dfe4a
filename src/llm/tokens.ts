/**
 * A deterministic token count: one token per word and per punctuation mark.
 * Close enough to BPE counts for English to make budgets meaningful offline
 * (the local provider) and when an upstream reports no usage. Pure.
 */
import type { ChatMessage } from './types.js';

const TOKEN = /[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_]/gu;

export function countTokens(text: string): number {
  return text.match(TOKEN)?.length ?? 0;
}

/** Prompt tokens: the contents plus one per message for its role marker. */
export function countPromptTokens(messages: readonly ChatMessage[]): number {
  return messages.reduce((sum, m) => sum + countTokens(m.content) + 1, 0);
}

/** The longest prefix of `text` holding at most `maxTokens` tokens. */
export function truncateToTokens(text: string, maxTokens: number): { text: string; truncated: boolean } {
  let count = 0;
  for (const match of text.matchAll(TOKEN)) {
    count += 1;
    if (count > maxTokens) return { text: text.slice(0, match.index).trimEnd(), truncated: true };
  }
  return { text, truncated: false };
}
