/**
 * The subset of the chat-completions request the proxy supports, validated
 * with zod. Fields we cannot honour (tools, n > 1, json_schema) are refused
 * with a 400 naming them, never silently dropped; harmless extras (user,
 * top_p, seed, ...) are ignored.
 */
import { z } from 'zod';
import type { CompletionRequest } from '../types.js';

const textPart = z.object({ type: z.literal('text'), text: z.string() });

const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant'], {
    error: (issue) => `role ${JSON.stringify(issue.input)} is not supported (system, developer, user, assistant; this proxy does not forward tools)`,
  }),
  content: z.union([z.string(), z.array(textPart).min(1)], { error: 'content must be a string or an array of text parts' }),
});

const unsupported = (what: string) => z.undefined({ error: `${what} is not supported by this proxy` }).optional();

export const chatCompletionRequestSchema = z.object({
  model: z.string({ error: 'model is required' }).min(1, 'model is required'),
  messages: z.array(message, { error: 'messages is required and must be an array' }).min(1, 'messages must not be empty'),
  temperature: z.number().min(0).max(2).nullish(),
  max_tokens: z.int().positive().nullish(),
  max_completion_tokens: z.int().positive().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  response_format: z
    .object({
      type: z.enum(['text', 'json_object'], { error: "response_format.type must be 'text' or 'json_object' (json_schema is not supported)" }),
    })
    .nullish(),
  n: z.literal(1, { error: 'n must be 1' }).nullish(),
  tools: unsupported('tools'),
  functions: unsupported('functions'),
});

export type ChatCompletionRequestBody = z.infer<typeof chatCompletionRequestSchema>;

export interface ParsedChatRequest {
  request: CompletionRequest;
  stream: boolean;
  includeUsage: boolean;
}

export type ParseOutcome = { ok: true; value: ParsedChatRequest } | { ok: false; message: string; param: string | null };

export function parseChatCompletionRequest(body: unknown): ParseOutcome {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return { ok: false, message: 'request body must be a JSON object', param: null };
  }
  const parsed = chatCompletionRequestSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = toParam(issue.path);
    return { ok: false, message: param ? `${param}: ${issue.message}` : issue.message, param: param || null };
  }
  const b = parsed.data;
  const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? undefined;
  return {
    ok: true,
    value: {
      request: {
        model: b.model,
        messages: b.messages.map((m) => ({
          role: m.role,
          content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
        })),
        ...(b.temperature != null ? { temperature: b.temperature } : {}),
        ...(maxTokens !== undefined ? { maxTokens } : {}),
        ...(b.response_format?.type === 'json_object' ? { json: true } : {}),
      },
      stream: b.stream === true,
      includeUsage: b.stream_options?.include_usage === true,
    },
  };
}

/** OpenAI's way of naming a field: `messages[0].content`. */
function toParam(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}
