/** The built-in step types: transform, sleep, fail. */
import { StepError } from '../errors.js';
import type { StepExecutor } from './types.js';
import type { Step } from '../../machines/definition.js';

type Of<T extends Step['type']> = Extract<Step, { type: T }>;

/** The value has been resolved from its templates already: it is the output. */
export const runTransform: StepExecutor<Of<'transform'>> = async ({ step }) => ({ output: step.value ?? null });

export const runSleep: StepExecutor<Of<'sleep'>> = ({ step, signal }) =>
  new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => resolve({ output: { sleptMs: step.durationMs } }), step.durationMs);
    signal.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
  });

export const runFail: StepExecutor<Of<'fail'>> = async ({ step }) => {
  throw new StepError('STEP_FAILED', step.message, { retryable: step.retryable });
};
