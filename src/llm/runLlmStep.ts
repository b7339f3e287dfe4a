/**
 * The `llm` step as the engine runs it: build the messages, respect the
 * remaining token budget, call the router, parse JSON when asked for.
 */
import { BudgetExceededError, LlmOutputError } from './errors.js';
import type { LlmRouter } from './llmRouter.js';
import { countPromptTokens } from './tokens.js';
import type { ChatMessage, Usage } from './types.js';

export interface LlmStep {
  model: string;
  /** Already template-resolved. */
  system?: string;
  /** Already template-resolved. */
  prompt: string;
  temperature?: number;
  maxTokens?: number;
  json?: boolean;
}

export interface LlmStepOutput {
  text?: string;
  json?: unknown;
  model: string;
  provider: string;
  usage: Usage;
  latencyMs: number;
}

export interface LlmStepOptions {
  signal?: AbortSignal;
  /** Tokens left in the execution's budget (from checkBudget); the completion is capped to fit. */
  budgetRemaining?: number;
  /** Per attempt; defaults to the provider's timeoutMs. */
  timeoutMs?: number;
}

/** Added when json is asked for and no message mentions JSON: OpenAI refuses json mode otherwise. */
export const JSON_INSTRUCTION = 'Respond with a single valid JSON object and nothing else.';

export async function runLlmStep(router: LlmRouter, step: LlmStep, options: LlmStepOptions = {}): Promise<LlmStepOutput> {
  const messages = buildMessages(step);
  const maxTokens = capToBudget(step.maxTokens, options.budgetRemaining, messages);
  const result = await router.complete(
    {
      model: step.model,
      messages,
      ...(step.temperature !== undefined ? { temperature: step.temperature } : {}),
      ...(maxTokens !== undefined ? { maxTokens } : {}),
      ...(step.json ? { json: true } : {}),
    },
    { signal: options.signal, timeoutMs: options.timeoutMs },
  );
  const base = { model: result.model, provider: result.provider, usage: result.usage, latencyMs: result.latencyMs };
  if (!step.json) return { text: result.text, ...base };
  return { json: parseJsonOutput(result.text, { provider: result.provider, model: result.model }), ...base };
}

export function buildMessages(step: LlmStep): ChatMessage[] {
  let system = step.system;
  if (step.json && !/json/i.test(`${system ?? ''}\n${step.prompt}`)) system = system ? `${system}\n\n${JSON_INSTRUCTION}` : JSON_INSTRUCTION;
  return [...(system ? [{ role: 'system' as const, content: system }] : []), { role: 'user', content: step.prompt }];
}

/**
 * The completion may use what the budget leaves after the prompt (estimated
 * with our own counter, so the cap is approximate; the engine's next
 * checkBudget stops the execution if a provider still goes over).
 */
function capToBudget(maxTokens: number | undefined, remaining: number | undefined, messages: ChatMessage[]): number | undefined {
  if (remaining === undefined || remaining === Infinity) return maxTokens;
  const prompt = countPromptTokens(messages);
  if (prompt >= remaining) throw new BudgetExceededError({ remainingTokens: remaining, neededTokens: prompt + 1 });
  return Math.min(maxTokens ?? Infinity, remaining - prompt);
}

/** Parses the model's JSON; one surrounding Markdown code fence is tolerated (some local models add it). */
export function parseJsonOutput(text: string, details: Record<string, unknown> = {}): unknown {
  const fenced = /^\s*```(?:json)?\s*\n([\s\S]*?)\n?```\s*$/i.exec(text);
  try {
    return JSON.parse(fenced ? fenced[1] : text);
  } catch (err) {
    throw new LlmOutputError(`model output is not valid JSON: ${(err as Error).message}`, text, details);
  }
}
