/**
 * What a runner asks about concurrency and rate keys (kept here, so the
 * runner only calls in): may this step (or this execution) start now, or is
 * it queued, and with which record; which slots to let go after a record.
 * Keys are evaluated once, when the step is first admitted or queued, and
 * recorded; a queued step is re-admitted with the recorded keys.
 */
import { inspectSnapshot, isTerminal, queuedStep, statusOf, stepMapGet, type StepQueued, type StepStarted, type WorkflowEvent, type WorkflowSnapshot } from '../../machines/index.js';
import type { ConcurrencyLimit, RateLimit, Step } from '../../machines/definition.js';
import { findStep } from '../../machines/blocks.js';
import { resolveValue, type ResolveScope } from '../definition/resolve.js';
import { StepError } from '../errors.js';
import type { Admission } from './admission.js';

/** A reserved rate slot this close is started at once (timer granularity). */
const SLACK_MS = 2;

export type StepDecision =
  /** Start it: these fields go into its StepStarted. */
  | { start: Pick<StepStarted, 'keys' | 'queuedMs'> }
  /** Record this StepQueued. */
  | { queue: StepQueued }
  /** Queued already: try again at this time (a reserved rate slot), or when woken (undefined). */
  | { retryAt?: number };

export const isLimited = (step: Step): boolean => step.concurrency !== undefined || step.rateLimit !== undefined;

/** A step attempt's id as a holder of keys. */
export const stepHolder = (executionId: string, stepId: string, attempt: number) => `${executionId}:${stepId}:${attempt}`;

export class RunnerLimits {
  /** Step id → the holder id and rate key of its running attempt. */
  private readonly steps = new Map<string, { holder: string; rateKey?: string }>();

  constructor(private readonly admission: Admission, private readonly executionId: string) {}

  /** Keys as values: `concurrency[i].key` first, then `rateLimit.key`. */
  private async evaluate(limits: ConcurrencyLimit[], rate: RateLimit | undefined, scope: ResolveScope, path: string): Promise<string[]> {
    const fields: [unknown, string][] = [...limits.map((c, i): [unknown, string] => [c.key, `${path}.concurrency[${i}].key`]), ...(rate ? [[rate.key, `${path}.rateLimit.key`] as [unknown, string]] : [])];
    return Promise.all(fields.map(async ([value, at]) => {
      const v = await resolveValue(value, scope, at);
      if ((typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') || v === '') throw new StepError('INVALID_KEY', `${at} gave ${v === '' ? 'an empty string' : JSON.stringify(v) ?? 'nothing'}: a key must be a non-empty string or a number`, { details: { path: at } });
      return String(v);
    }));
  }

  async admitStep(step: Step, snap: WorkflowSnapshot, attempt: number, scope: () => Promise<ResolveScope>, path: string): Promise<StepDecision> {
    const now = Date.now();
    // Only a step that is queued now: an entry left from before a resume is not this run's.
    const q = inspectSnapshot(snap).phases[step.id] === 'queued' ? queuedStep(snap.context, step.id) : undefined;
    const keys = q?.keys ?? (await this.evaluate(step.concurrency ?? [], step.rateLimit, await scope(), path));
    const since = q?.since ?? new Date(now).toISOString();
    const rateKey = step.rateLimit ? keys[keys.length - 1] : undefined;
    // A rate slot once reserved is kept (recorded as `until`): a re-admission never reserves again.
    let until = q?.until !== undefined ? Date.parse(q.until) : undefined;
    if (step.rateLimit && until === undefined) {
      until = await this.admission.store.reserve(rateKey!, step.rateLimit.perMinute);
      if (until > now + SLACK_MS) return { queue: queued(step.id, attempt, keys, since, until) };
    }
    if (until !== undefined && until > now + SLACK_MS) return { retryAt: until };
    const holder = stepHolder(this.executionId, step.id, attempt);
    if (step.concurrency) {
      const got = await this.admission.take(step.concurrency.map((c, i) => ({ key: keys[i], limit: c.limit })), { id: holder, executionId: this.executionId, stepId: step.id, attempt });
      if (!got.granted) return q?.reason === 'concurrency' ? {} : { queue: queued(step.id, attempt, keys, since, until, true) };
    }
    this.steps.set(step.id, { holder, ...(rateKey !== undefined ? { rateKey } : {}) });
    return { start: { keys, ...(q ? { queuedMs: Math.max(0, now - Date.parse(q.since)) } : {}) } };
  }

  /**
   * A workflow-level limit: the record that admits or queues the execution, or undefined
   * (queued already and still no slot). An execution admitted before takes its slots back.
   */
  async admitExecution(snap: WorkflowSnapshot, scope: ResolveScope): Promise<WorkflowEvent | undefined> {
    const limits = snap.context.definition.concurrency!;
    const q = snap.context.executionQueued;
    const keys = q?.keys ?? (await this.evaluate(limits, undefined, scope, '(workflow)'));
    const got = await this.admission.take(limits.map((c, i) => ({ key: keys[i], limit: c.limit })), { id: this.executionId, executionId: this.executionId }, snap.context.admitted === true);
    if (snap.context.admitted) return undefined;
    if (got.granted) return { type: 'ExecutionAdmitted', keys, ...(q ? { queuedMs: Math.max(0, Date.now() - Date.parse(q.since)) } : {}) };
    return q ? undefined : { type: 'ExecutionQueued', keys, since: new Date().toISOString() };
  }

  /** Whether the execution must be admitted (or take its slots back) before a step runs. */
  needsExecutionAdmission(snap: WorkflowSnapshot): boolean {
    return snap.context.definition.concurrency !== undefined && !this.admission.holds(this.executionId);
  }

  holdsExecution(): boolean {
    return this.admission.holds(this.executionId);
  }

  /** Whether `holder` names what waits in this snapshot: a queued step attempt, or the queued execution. */
  waits(snap: WorkflowSnapshot, holder: string): boolean {
    if (holder === this.executionId) return (snap.value as unknown) === 'queued';
    const [, stepId, attempt] = holder.split(':');
    const q = queuedStep(snap.context, stepId);
    return q !== undefined && q.attempt === Number(attempt) && inspectSnapshot(snap).phases[stepId] === 'queued';
  }

  /** After a record: slots of steps that stopped running go back; an LLM call's tokens count against its rate key. */
  afterRecord(event: WorkflowEvent, after: WorkflowSnapshot): void {
    if (event.type === 'StepCompleted' && event.usage && this.steps.get(event.stepId)?.rateKey !== undefined) {
      const step = this.steps.get(event.stepId)!;
      const tpm = findRate(after, event.stepId);
      if (tpm) this.admission.store.spend(step.rateKey!, event.usage.totalTokens, tpm).catch(() => undefined);
    }
    const ended = isTerminal(statusOf(after));
    const phases = ended ? {} : inspectSnapshot(after).phases;
    for (const [stepId, { holder }] of this.steps) {
      const attempt = Number(holder.slice(holder.lastIndexOf(':') + 1));
      const stillRuns = (phases[stepId] === 'running' || phases[stepId] === 'waiting') && stepMapGet(after.context.attempts, stepId) === attempt;
      if (stillRuns) continue;
      this.steps.delete(stepId);
      void this.admission.release(holder).catch(() => undefined);
    }
    if (ended) void this.admission.release(this.executionId).catch(() => undefined);
  }

  /** The runner stops hosting: every slot it holds goes back. */
  releaseAll(): void {
    for (const { holder } of this.steps.values()) void this.admission.release(holder).catch(() => undefined);
    this.steps.clear();
    void this.admission.release(this.executionId).catch(() => undefined);
  }
}

function queued(stepId: string, attempt: number, keys: string[], since: string, until: number | undefined, forSlot = false): StepQueued {
  return { type: 'StepQueued', stepId, attempt, keys, since, ...(until !== undefined ? { until: new Date(until).toISOString() } : {}), ...(forSlot ? { reason: 'concurrency' as const } : { reason: 'rate' as const }) };
}

function findRate(snap: WorkflowSnapshot, stepId: string): number | undefined {
  return findStep(snap.context.definition, stepId)?.rateLimit?.tokensPerMinute;
}
