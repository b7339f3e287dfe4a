/**
 * What a `sleep` step's fields mean: `durationMs` (milliseconds, or a template
 * resolving to them) or `until` (an ISO-8601 time, or a template resolving to
 * one). Validation checks what is literal; the runner resolves the templates
 * when the step starts and records the wake time. Pure.
 */
import { MAX_SLEEP_MS, type Step } from '../../machines/definition.js';
import { StepError } from '../errors.js';

type SleepStep = Extract<Step, { type: 'sleep' }>;

// A date, or a date-time with its zone: a time without a zone would mean different instants on different workers.
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** Milliseconds since the epoch of an ISO-8601 time, or undefined when it is not one. */
export function parseIsoTime(value: unknown): number | undefined {
  if (typeof value !== 'string' || !ISO_TIME.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

export const ISO_TIME_HINT = 'an ISO-8601 time with a zone, e.g. 2030-01-31T09:00:00Z, or a date';

/** A step with its templates resolved: when it wakes, and for how long it sleeps from `now`. */
export function planSleep(step: SleepStep, now: number): { wakeAt: string; durationMs: number } {
  if (step.until !== undefined) {
    const at = parseIsoTime(step.until);
    if (at === undefined) throw invalid(step, `until must be ${ISO_TIME_HINT}; it is ${JSON.stringify(step.until)}`);
    // A time already past wakes at once. Recorded in UTC, whatever zone it was given in.
    const wake = Math.max(at, now);
    return { wakeAt: new Date(wake).toISOString(), durationMs: wake - now };
  }
  const ms = step.durationMs as unknown;
  if (typeof ms !== 'number' || !Number.isInteger(ms) || ms < 0 || ms > MAX_SLEEP_MS) {
    throw invalid(step, `durationMs must be a whole number of milliseconds from 0 to ${MAX_SLEEP_MS}; it is ${JSON.stringify(ms)}`);
  }
  return { wakeAt: new Date(now + ms).toISOString(), durationMs: ms };
}

function invalid(step: SleepStep, message: string): StepError {
  return new StepError('INVALID_SLEEP', `sleep step '${step.id}': ${message}`, { details: { stepId: step.id } });
}
