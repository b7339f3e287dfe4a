/** The executors a worker uses by default. The llm executor is added by whoever has a provider router. */
import { runFail, runTransform } from './basic.js';
import { httpExecutorFromEnv } from './http.js';
import type { StepExecutors } from './types.js';

/** `http` steps follow the outbound policy of this process's HTTP_STEP_ALLOW (read here, once). */
export function defaultExecutors(extra: StepExecutors = {}): StepExecutors {
  return { transform: runTransform, http: httpExecutorFromEnv(), fail: runFail, ...extra };
}
