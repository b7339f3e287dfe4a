/**
 * The `llm` step as the engine runs it: build the messages, respect the
 * remaining token budget, call the router, parse JSON when asked for.
 *
 * With a `schema`, the answer is asked for as structured output and checked
 * with ajv; an answer that is not JSON or does not match is followed by a
 * message listing what is wrong, and asked again, up to `maxAsks` times. Each
 * ask is one router call, so it has the router's retries and the step's
 * `fallbackModels`; every call lands in `attempts` with its ask and model.
 */
import { performance } from 'node:perf_hooks';
import { SmartSpecError } from '../errors.js';
import { BudgetExceededError, LlmCancelledError, LlmOutputError, LlmSchemaMismatchError } from './errors.js';
import type { LlmRouter } from './llmRouter.js';
import { answerCheck, type AnswerCheck } from './outputSchema.js';
import { countPromptTokens } from './tokens.js';
import type { ChatMessage, CompletionResult, LlmAttempt, Usage } from './types.js';

export interface LlmStep {
  model: string;
  /** Already template-resolved. */
  system?: string;
  /** Already template-resolved. */
  prompt: string;
  temperature?: number;
  maxTokens?: number;
  json?: boolean;
  /** A JSON Schema (checked at definition validation) the answer must match. */
  schema?: Record<string, unknown>;
  /** The structured output's name upstream (letters, digits, `_`, `-`); default `answer`. */
  schemaName?: string;
  /** How often to ask while answers do not match the schema (default 1, at most MAX_ASKS). */
  maxAsks?: number;
  /** Tried in order when the model fails with a retryable error. */
  fallbackModels?: string[];
}

/** One call to one model, as the router reported it, with the step's ask it belongs to. */
export interface LlmStepAttempt extends LlmAttempt {
  /** 1-based; each re-ask after an answer that did not match the schema is a new ask. */
  ask: number;
  /** The call answered, but the answer did not match the schema: why. */
  invalid?: string[];
}

export interface LlmStepOutput {
  text?: string;
  json?: unknown;
  model: string;
  provider: string;
  /** Summed over every ask. */
  usage: Usage;
  latencyMs: number;
  attempts: LlmStepAttempt[];
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

/** The most asks a schema step makes, whatever its retry.maxAttempts: each re-ask spends a whole prompt. */
export const MAX_ASKS = 10;

const NO_USAGE: Usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0 };

export async function runLlmStep(router: LlmRouter, step: LlmStep, options: LlmStepOptions = {}): Promise<LlmStepOutput> {
  const started = performance.now();
  checkModels(router, step);
  const check = step.schema ? answerCheck(step.schema) : undefined;
  const maxAsks = check ? Math.min(Math.max(1, step.maxAsks ?? 1), MAX_ASKS) : 1;
  const prompt = buildMessages(step);
  let messages = prompt;
  const attempts: LlmStepAttempt[] = [];
  let usage = NO_USAGE;
  let problems: string[] = [];
  let result: CompletionResult | undefined;

  for (let ask = 1; ask <= maxAsks; ask++) {
    try {
      const remaining = options.budgetRemaining === undefined ? undefined : options.budgetRemaining - usage.totalTokens;
      const maxTokens = capToBudget(step.maxTokens, remaining, messages);
      result = await router.complete(
        {
          model: step.model,
          messages,
          ...(step.temperature !== undefined ? { temperature: step.temperature } : {}),
          ...(maxTokens !== undefined ? { maxTokens } : {}),
          ...(step.json || check ? { json: true } : {}),
          ...(check ? { schema: { name: step.schemaName ?? 'answer', schema: step.schema! } } : {}),
          ...(step.fallbackModels?.length ? { fallbackModels: step.fallbackModels } : {}),
        },
        { signal: options.signal, timeoutMs: options.timeoutMs },
      );
    } catch (err) {
      throw withStepFacts(err, ask, attempts, usage);
    }
    usage = addUsage(usage, result.usage);
    const calls: LlmStepAttempt[] = result.attempts.map((a) => ({ ask, ...a }));
    attempts.push(...calls);
    const base = { model: result.model, provider: result.provider, usage, attempts };
    if (!check) {
      const done = { ...base, latencyMs: elapsed(started) };
      if (!step.json) return { text: result.text, ...done };
      return { json: parseJsonOutput(result.text, { provider: result.provider, model: result.model }), ...done };
    }
    const answer = checkAnswer(result.text, check);
    if (answer.problems.length === 0) return { text: result.text, json: answer.value, ...base, latencyMs: elapsed(started) };
    problems = answer.problems;
    calls[calls.length - 1].invalid = problems;
    // Only the latest answer is shown back: the conversation stays the size of one exchange.
    messages = [...prompt, { role: 'assistant', content: result.text }, { role: 'user', content: followUp(problems) }];
  }
  throw new LlmSchemaMismatchError(maxAsks, problems, result?.text ?? '', {
    provider: result?.provider,
    model: result?.model,
    attempts,
    usage,
    ...(maxAsks < MAX_ASKS ? { hint: `a higher retry.maxAttempts allows more asks (up to ${MAX_ASKS})` } : {}),
  });
}

/** The model and every fallback must resolve before anything is sent: a typo is not discovered on the day of an outage. */
function checkModels(router: LlmRouter, step: LlmStep): void {
  router.resolve(step.model);
  step.fallbackModels?.forEach((name, i) => {
    try {
      router.resolve(name);
    } catch (err) {
      if (!(err instanceof SmartSpecError)) throw err;
      throw new SmartSpecError(err.code, `fallbackModels[${i}]: ${err.message}`, { cause: err, details: { ...err.details, field: `fallbackModels[${i}]` } });
    }
  });
}

/** The answer parsed and checked: the value, or what is wrong with it. */
function checkAnswer(text: string, check: AnswerCheck): { value?: unknown; problems: string[] } {
  let value: unknown;
  try {
    value = parseJsonOutput(text);
  } catch (err) {
    if (!(err instanceof LlmOutputError)) throw err;
    return { problems: [`(answer) ${err.message}`] };
  }
  return { value, problems: check(value) };
}

export function followUp(problems: string[]): string {
  return `Your answer does not match the required JSON Schema:\n${problems.map((p) => `- ${p}`).join('\n')}\nReply with only the corrected JSON object.`;
}

/** A failure after earlier asks (or with the router's attempts) carries every call and the tokens already spent. */
function withStepFacts(err: unknown, ask: number, earlier: LlmStepAttempt[], usage: Usage): unknown {
  if (!(err instanceof SmartSpecError) || err instanceof LlmCancelledError) return err;
  const own = Array.isArray(err.details?.attempts) ? (err.details.attempts as LlmAttempt[]).map((a) => ({ ask, ...a })) : [];
  if (earlier.length === 0 && own.length === 0) return err;
  return new SmartSpecError(err.code, err.message, {
    retryable: err.retryable,
    cause: err,
    details: { ...err.details, attempts: [...earlier, ...own], ...(usage.totalTokens > 0 ? { usage } : {}) },
  });
}

export function buildMessages(step: LlmStep): ChatMessage[] {
  let system = step.system;
  const json = step.json || step.schema !== undefined;
  if (json && !/json/i.test(`${system ?? ''}\n${step.prompt}`)) system = system ? `${system}\n\n${JSON_INSTRUCTION}` : JSON_INSTRUCTION;
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
  if (prompt >= remaining) throw new BudgetExceededError({ remainingTokens: Math.max(0, remaining), neededTokens: prompt + 1 });
  return Math.min(maxTokens ?? Infinity, remaining - prompt);
}

function addUsage(a: Usage, b: Usage): Usage {
  return {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
    totalTokens: a.totalTokens + b.totalTokens,
    ...(a.estimated || b.estimated ? { estimated: true as const } : {}),
  };
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
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
