/** The step executors the CLI runs with: the built-ins (the llm executor joins with the provider layer). */
import { defaultExecutors } from '../steps/index.js';
import type { StepExecutors } from '../steps/types.js';

export function cliExecutors(): StepExecutors {
  return defaultExecutors();
}
