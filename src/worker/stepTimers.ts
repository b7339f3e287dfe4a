/**
 * The durable timers of steps: a sleep's wake time and a signal step's
 * timeout. When such a step starts, its StepStarted records the time
 * (`wakeAt`, `deadline`); the machine keeps it in its context, so whoever
 * hosts the execution later (after passivation or a crash) knows it from the
 * log alone. What the timer commits when it is due is decided here, from the
 * snapshot at that moment: the machine refuses it if it no longer applies
 * (the signal came first, the attempt is over).
 */
import { eventSignalName, type Step } from '../../machines/definition.js';
import { stepMapGet, stepMapHas, type ErrorInfo, type StepStarted, type WorkflowEvent, type WorkflowSnapshot } from '../../machines/index.js';
import { planSleep } from '../definition/sleep.js';
import { resolveTemplates, type TemplateScope } from '../definition/templates.js';

/** The timer fields of a step's StepStarted: a sleep's wake time, a signal step's deadline, or none. */
export function timerFields(step: Step, snap: WorkflowSnapshot, scope: TemplateScope, now: number): Pick<StepStarted, 'wakeAt' | 'durationMs' | 'deadline'> {
  if (step.type === 'sleep') {
    return planSleep({ ...step, durationMs: resolveTemplates(step.durationMs, scope) as number | undefined, until: resolveTemplates(step.until, scope) as string | undefined }, now);
  }
  // A signal that is already here completes the step as it starts: no timeout to keep.
  if (step.type === 'signal' && step.timeoutMs && !stepMapHas(snap.context.signals, step.name ?? step.id)) {
    return { deadline: new Date(now + step.timeoutMs).toISOString() };
  }
  if (step.type === 'waitForEvent' && step.timeoutMs && !stepMapHas(snap.context.signals, eventSignalName(step.id))) {
    return { deadline: new Date(now + step.timeoutMs).toISOString() };
  }
  return {};
}

/** The timer of a waiting step, as recorded for its current attempt. */
export function recordedTimer(step: Step, snap: WorkflowSnapshot): { at: number; attempt: number; durationMs?: number } | undefined {
  const attempt = stepMapGet(snap.context.attempts, step.id);
  const t = snap.context.timers?.[step.id];
  return t && t.attempt === attempt ? { at: Date.parse(t.at), attempt, ...(t.durationMs !== undefined ? { durationMs: t.durationMs } : {}) } : undefined;
}

/**
 * What a due timer records: a sleep ends, a signal step times out. `lateMs`: how long after its time.
 * `at`, when given, must be the recorded time: a timer armed again since (a resumed step) is not this one.
 */
export function timerEvent(step: Step, snap: WorkflowSnapshot, attempt: number, now: number, at?: string): WorkflowEvent | undefined {
  const t = recordedTimer(step, snap);
  if (at !== undefined && (!t || Date.parse(at) !== t.at)) return undefined;
  // A signal step started before timeouts were recorded: its timeout counts from when this process found it.
  const legacy = !t && step.type === 'signal' && step.timeoutMs !== undefined;
  if (!t && !legacy) return undefined;
  if (t && t.attempt !== attempt) return undefined;
  const lateMs = t ? Math.max(0, now - t.at) : 0;
  if (step.type === 'sleep') return { type: 'StepCompleted', stepId: step.id, attempt, output: { sleptMs: t!.durationMs ?? null }, lateMs };
  if (step.type === 'waitForEvent' && t) {
    const error: ErrorInfo = { code: 'EVENT_TIMEOUT', message: `no matching event on '${step.subject}' for step '${step.id}' within ${step.timeoutMs} ms`, retryable: false };
    return { type: 'StepFailed', stepId: step.id, attempt, error, lateMs };
  }
  if (step.type !== 'signal') return undefined;
  const error: ErrorInfo = { code: 'TIMEOUT', message: `no signal for step '${step.id}' within ${step.timeoutMs} ms`, retryable: true };
  return { type: 'StepFailed', stepId: step.id, attempt, error, ...(t ? { lateMs } : {}) };
}

/** setTimeout beyond its 24.8-day limit; returns a cancel function. */
export function setLongTimeout(fn: () => void, ms: number): () => void {
  const MAX = 2 ** 31 - 1;
  let timer: NodeJS.Timeout;
  const arm = (left: number) => {
    timer = setTimeout(() => (left > MAX ? arm(left - MAX) : fn()), Math.max(0, Math.min(left, MAX)));
  };
  arm(ms);
  return () => clearTimeout(timer);
}
