/** The executors a worker uses by default. The llm executor is added by whoever has a provider router. */
import { runFail, runTransform } from './basic.js';
import { runHttp } from './http.js';
import type { StepExecutors } from './types.js';

export function defaultExecutors(extra: StepExecutors = {}): StepExecutors {
  return { transform: runTransform, http: runHttp, fail: runFail, ...extra };
}
