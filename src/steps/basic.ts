/** The built-in step types transform and fail. (A sleep is a durable timer the runner keeps: no executor.) */
import { StepError } from '../errors.js';
import type { StepExecutor } from './types.js';
import type { Step } from '../../machines/definition.js';

type Of<T extends Step['type']> = Extract<Step, { type: T }>;

/** The value has been resolved from its templates already: it is the output. */
export const runTransform: StepExecutor<Of<'transform'>> = async ({ step }) => ({ output: step.value ?? null });

export const runFail: StepExecutor<Of<'fail'>> = async ({ step }) => {
  throw new StepError('STEP_FAILED', step.message, { retryable: step.retryable });
};
