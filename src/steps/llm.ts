/**
 * The `llm` step: a chat completion through the provider router (src/llm).
 *
 * - `schema`: the answer is asked for as structured output and checked; one
 *   that does not match is re-asked with what is wrong, up to
 *   `retry.maxAttempts` asks (runLlmStep). The output gets `json`.
 * - `fallbackModels`: tried in order when the model fails with a retryable
 *   error. Every call is in the output's `attempts` (with its model), or in
 *   the error's `details.attempts` when the step fails.
 *
 * - The run's AbortSignal goes to the router, so cancelling the execution or
 *   the step's `timeoutMs` aborts the HTTP request in flight.
 * - The execution's remaining token budget (checkBudget) is passed on: the
 *   completion is capped to fit, and a prompt that cannot fit is refused
 *   (BUDGET_EXCEEDED) before anything is sent.
 * - The result carries `usage` and `latencyMs`, which the runner records on
 *   StepCompleted; the machine sums usage into the execution's context.
 *
 * Retries happen at two levels, each with its own job. The router retries
 * transient failures (429, 5xx, connection errors, timeouts) within one step
 * attempt, seconds apart, honouring Retry-After, and falls back along the
 * configured chain. What survives that reaches the step as a SmartSpecError
 * whose `retryable` flag is left as the LLM layer set it, so the step's own
 * `retry` policy (durable, recorded in the log, minutes apart if you like)
 * takes over only for failures that another try may fix. Rejections (4xx),
 * invalid JSON, unknown models, disabled providers, budget refusals and
 * cancellations are not retryable, so a step retry never repeats them.
 */
import type { Usage } from '../../machines/events.js';
import type { Step } from '../../machines/definition.js';
import { SmartSpecError, StepError } from '../errors.js';
import { ModelNotFoundError, checkBudget, runLlmStep, type LlmRouter, type LlmStepAttempt, type Usage as LlmUsage } from '../llm/index.js';
import type { StepExecutor } from './types.js';

export type LlmStepDefinition = Extract<Step, { type: 'llm' }>;

/** The step's output (what `{{steps.<id>.output...}}` reads). */
export interface LlmStepResultOutput {
  /** The answer, unless `json: true` without a schema. */
  text?: string;
  /** The parsed answer with `json: true` or a `schema` (then it matches the schema). */
  json?: unknown;
  /** The model that answered, as its provider names it (aliases resolved, after any fallback). */
  model: string;
  provider: string;
  /** As the provider reported it, summed over every ask (`estimated: true` when one reported none and we counted). */
  usage: LlmUsage;
  /** Every call: ask, provider, model, ok, status, code, and for an answer that did not match, `invalid`. */
  attempts: LlmStepAttempt[];
}

/**
 * An executor for `llm` steps. `router` may be a function, called on the first
 * llm step and not before (so processes that never run one never read the
 * LLM configuration).
 */
export function llmExecutor(router: LlmRouter | (() => LlmRouter)): StepExecutor<LlmStepDefinition> {
  const getRouter = typeof router === 'function' ? router : () => router;
  return async ({ step, signal, usage, budget }) => {
    try {
      // Throws BUDGET_EXCEEDED when nothing remains (e.g. a retry after a sibling spent the rest).
      const budgetRemaining = checkBudget(budget, usage.totalTokens);
      const result = await runLlmStep(
        getRouter(),
        {
          model: modelName(step.model),
          prompt: asText(step.prompt),
          ...(step.system !== undefined ? { system: asText(step.system) } : {}),
          ...(step.temperature !== undefined ? { temperature: step.temperature } : {}),
          ...(step.maxTokens !== undefined ? { maxTokens: step.maxTokens } : {}),
          ...(step.json ? { json: true } : {}),
          ...(step.schema ? { schema: step.schema, schemaName: step.id, maxAsks: step.retry?.maxAttempts ?? 1 } : {}),
          ...(step.fallbackModels ? { fallbackModels: step.fallbackModels } : {}),
        },
        { signal, budgetRemaining },
      );
      const output: LlmStepResultOutput = {
        ...(result.text !== undefined || !step.json ? { text: result.text ?? '' } : {}),
        ...(result.json !== undefined ? { json: result.json } : {}),
        model: result.model,
        provider: result.provider,
        usage: result.usage,
        attempts: result.attempts,
      };
      return { output, usage: recordUsage(result.usage), latencyMs: result.latencyMs };
    } catch (err) {
      if (err instanceof SmartSpecError) throw err;
      // Anything else is a bug or an unconverted foreign error: still a coded, non-retryable failure.
      throw new StepError('LLM_ERROR', `llm step '${step.id}' failed: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  };
}

/** The log's usage shape: the three counts, nothing else. */
function recordUsage(u: LlmUsage): Usage {
  return { promptTokens: u.promptTokens, completionTokens: u.completionTokens, totalTokens: u.totalTokens };
}

/** A prompt that is a single template may resolve to an object: send it as JSON. */
function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value) ?? '';
}

/** A templated model must resolve to a name. */
function modelName(value: unknown): string {
  if (typeof value === 'string') return value;
  throw new ModelNotFoundError(JSON.stringify(value) ?? String(value), 'the model field must resolve to a string');
}
