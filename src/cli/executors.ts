/**
 * The step executors the CLI runs with: the built-ins plus `llm`, routed by
 * the providers configured in the environment (src/llm/README.md): `local` is
 * always there and works offline; OPENAI_API_KEY adds `openai`, and so on.
 * The router is built once, on the first llm step, so a broken LLM
 * configuration fails that step (recorded, resumable once fixed) and never
 * stands in the way of commands that run no llm step (status, cancel, ...).
 * `http` steps follow the outbound policy of `env` (HTTP_STEP_ALLOW): an
 * invalid allow list stops the process at start, naming the variable.
 */
import { createLlmRouter, type Env, type LlmRouter } from '../llm/index.js';
import { defaultExecutors } from '../steps/index.js';
import { httpExecutorFromEnv } from '../steps/http.js';
import { llmExecutor } from '../steps/llm.js';
import type { StepExecutors } from '../steps/types.js';

export function cliExecutors(env: Env = process.env): StepExecutors {
  let router: LlmRouter | undefined;
  return defaultExecutors({ http: httpExecutorFromEnv(env), llm: llmExecutor(() => (router ??= createLlmRouter(env))) });
}
