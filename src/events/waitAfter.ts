/**
 * A waitForEvent step's `after`, once its template or expression is resolved:
 * the time from which published events count (an ISO-8601 time with a zone).
 * Pure.
 */
import type { Step } from '../../machines/definition.js';
import { ISO_TIME_HINT, parseIsoTime } from '../definition/sleep.js';
import { StepError } from '../errors.js';

/** The resolved `after` as an ISO-8601 UTC time, or the step's error naming what it was. */
export function waitAfterTime(step: Extract<Step, { type: 'waitForEvent' }>, resolved: unknown): string {
  const ms = parseIsoTime(resolved);
  if (ms === undefined) {
    throw new StepError('INVALID_WAIT_AFTER', `waitForEvent step '${step.id}': after must be ${ISO_TIME_HINT}; it is ${JSON.stringify(resolved) ?? 'undefined'}`, { details: { stepId: step.id } });
  }
  return new Date(ms).toISOString();
}
