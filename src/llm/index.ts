/** The LLM layer's public surface: providers, router, the `llm` step, budgets, the OpenAI-compatible proxy. */
import { createProviders } from './config/createProviders.js';
import type { LlmConfigFile } from './config/configFile.js';
import type { Env } from './config/envProviders.js';
import { LlmRouter, type LlmRouterOptions } from './llmRouter.js';

export type * from './types.js';
export * from './errors.js';
export { createProviders, summarizeProviders, DEFAULT_MODEL, type ProviderSet, type ProviderSummary } from './config/createProviders.js';
export { loadLlmConfigFile, parseLlmConfig, type LlmConfigFile } from './config/configFile.js';
export type { Env } from './config/envProviders.js';
export { LlmRouter, type LlmRouterOptions, type CallOptions } from './llmRouter.js';
export { resolveModel, listModels, type ResolvedModel } from './resolveModel.js';
export { runLlmStep, parseJsonOutput, buildMessages, followUp, JSON_INSTRUCTION, MAX_ASKS, type LlmStep, type LlmStepAttempt, type LlmStepOutput, type LlmStepOptions } from './runLlmStep.js';
export { checkBudget, type TokenBudget } from './budget.js';
export { countTokens, countPromptTokens } from './tokens.js';
export { parseRetryAfter, backoffDelayMs, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
export { LocalProvider, LOCAL_NOTICE } from './providers/localProvider.js';
export { OpenAiProtocolProvider } from './providers/openAiProtocolProvider.js';
export { createLlmProxyRouter } from './proxy/createLlmProxyRouter.js';

/** createProviders + new LlmRouter: what a composition root (CLI, worker, edge) calls. */
export function createLlmRouter(env: Env = process.env, configFile?: string | LlmConfigFile, options?: LlmRouterOptions): LlmRouter {
  return new LlmRouter(createProviders(env, configFile), options);
}
