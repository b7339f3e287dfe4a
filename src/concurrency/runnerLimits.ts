/**
 * Concurrency and rate keys for one runner (kept here, so the runner only
 * calls in): whether a step (or the execution) starts now or is queued, and
 * with which record; a queued one is parked until a wake command or its
 * reserved rate time; which slots go back after a record. Keys are evaluated
 * once, when the step is first admitted or queued, and recorded; a queued
 * step is re-admitted with the recorded keys.
 */
import { inspectSnapshot, isTerminal, queuedStep, statusOf, stepMapGet, type StepQueued, type StepStarted, type WorkflowEvent, type WorkflowSnapshot } from '../../machines/index.js';
import type { ConcurrencyLimit, RateLimit, Step } from '../../machines/definition.js';
import { findStep } from '../../machines/blocks.js';
import { resolveValue, type ResolveScope } from '../definition/resolve.js';
import { InvalidExecutionStateError, StepError, toErrorRecord } from '../errors.js';
import type { Admission } from './admission.js';

/** A reserved rate slot this close is started at once (timer granularity). */
const SLACK_MS = 2;

/** What the runner lends: its records, its start of an admitted step, its reaction to the snapshot. */
export interface LimitsHost {
  readonly workflowId: string;
  readonly snapshot: WorkflowSnapshot;
  readonly isStopped: boolean;
  /** Record an event (once per key while it is being recorded). */
  record(key: string, event: WorkflowEvent): void;
  /** Record the start of an admitted step, with these fields. */
  startAdmitted(step: Step, attempt: number, fields: Pick<StepStarted, 'keys' | 'queuedMs'>): void;
  /** Look at the snapshot again and do what it calls for. */
  react(): void;
  /** What the step's templates may read. */
  scope(step: Step, snap: WorkflowSnapshot): Promise<ResolveScope>;
  /** The step's path in the definition, for errors. */
  pathOf(step: Step): string;
}

/** The name under which a queued execution is parked. */
const EXECUTION = '(execution)';

type StepDecision =
  /** Start it: these fields go into its StepStarted. */
  | { start: Pick<StepStarted, 'keys' | 'queuedMs'> }
  /** Record this StepQueued. */
  | { queue: StepQueued }
  /** Queued already: try again at this time (a reserved rate slot), or when woken (undefined). */
  | { retryAt?: number };

export const isLimited = (step: Step): boolean => step.concurrency !== undefined || step.rateLimit !== undefined;

/** Whether a queued step waits for its rate time and that comes by `time` (epoch ms); not one that waits for a slot. */
export function startsBy(snap: WorkflowSnapshot, stepId: string, time: number): boolean {
  const q = queuedStep(snap.context, stepId);
  return q?.reason === 'rate' && q.until !== undefined && Date.parse(q.until) <= time;
}

/** A step attempt's id as a holder of keys. */
export const stepHolder = (executionId: string, stepId: string, attempt: number) => `${executionId}:${stepId}:${attempt}`;

export class RunnerLimits {
  /** Step id → the holder id and rate key of its running attempt. */
  private readonly steps = new Map<string, { holder: string; rateKey?: string }>();
  /** Admissions under way (step ids, or `(execution)`). */
  private readonly admitting = new Set<string>();
  /** Queued with no slot: left alone until a wake command. */
  private readonly parked = new Set<string>();
  /** Queued on a rate key: tried again at the reserved time. */
  private readonly timers = new Map<string, NodeJS.Timeout>();
  /** Wakes so far: one that comes while an admission is under way makes it try again rather than park. */
  private wakes = 0;

  constructor(private readonly admission: Admission, private readonly executionId: string, private readonly host: LimitsHost) {}

  /** An admission is under way: the execution may start a step any moment, so it is not idle. */
  get busy(): boolean {
    return this.admitting.size > 0;
  }

  /** Whether a queued step is to be tried now (not under way, parked, or waiting for its rate time). */
  due(stepId: string): boolean {
    return !this.admitting.has(stepId) && !this.parked.has(stepId) && !this.timers.has(stepId);
  }

  /**
   * Admit a step: admitted, it starts (its StepStarted says its keys and how long it queued);
   * over a limit, it is queued (StepQueued), or stays queued until it is woken or its reserved
   * rate time comes. A key that cannot be read fails the step.
   */
  admitStep(step: Step, snap: WorkflowSnapshot, attempt: number): void {
    if (this.admitting.has(step.id)) return;
    this.admitting.add(step.id);
    const wakes = this.wakes;
    void this.decide(step, snap, attempt).then((decision) => {
      this.admitting.delete(step.id);
      if (this.host.isStopped) return;
      if ('start' in decision) return this.host.startAdmitted(step, attempt, decision.start);
      if ('queue' in decision) return this.host.record(step.id, decision.queue);
      if (decision.retryAt !== undefined) {
        this.timers.set(step.id, setTimeout(() => { this.timers.delete(step.id); if (!this.host.isStopped) this.host.react(); }, decision.retryAt - Date.now()));
      } else if (wakes === this.wakes) this.parked.add(step.id);
      this.host.react();
    }, (err) => {
      this.admitting.delete(step.id);
      if (!this.host.isStopped) this.host.record(step.id, { type: 'StepFailed', stepId: step.id, attempt, error: toErrorRecord(err) });
    });
  }

  /** A workflow-level key: record the execution's admission or its queueing; queued already, park. */
  admitExecution(snap: WorkflowSnapshot): void {
    if (this.admitting.has(EXECUTION) || this.parked.has(EXECUTION)) return;
    this.admitting.add(EXECUTION);
    const wakes = this.wakes;
    const scope = { input: snap.context.input, steps: {}, execution: { id: this.executionId, workflowId: this.host.workflowId } };
    void this.decideExecution(snap, scope).then((event) => {
      this.admitting.delete(EXECUTION);
      if (this.host.isStopped) return;
      if (event) return this.host.record(EXECUTION, event);
      if (wakes === this.wakes && !this.admission.holds(this.executionId)) this.parked.add(EXECUTION);
      this.host.react();
    }, (err) => {
      this.admitting.delete(EXECUTION);
      if (!this.host.isStopped) this.host.record(EXECUTION, { type: 'ExecutionFailed', error: toErrorRecord(err) });
    });
  }

  /**
   * A slot may be free for `holder` (a wake command): try again. Refused
   * (InvalidExecutionStateError) when it no longer waits here, so its place in the queue goes.
   */
  wake(holder: string): void {
    if (!this.waits(this.host.snapshot, holder)) throw new InvalidExecutionStateError(`'${holder}' of execution '${this.executionId}' is not queued (any more)`);
    this.wakes++;
    this.parked.clear();
    this.host.react();
  }

  /** Whether a due timer is a queued step's reserved rate time (then it is tried again, not recorded). */
  isRateTimer(stepId: string, at: string | undefined): boolean {
    return at !== undefined && queuedStep(this.host.snapshot.context, stepId)?.until === at;
  }

  /** Keys as values: `concurrency[i].key` first, then `rateLimit.key`. */
  private async evaluate(limits: ConcurrencyLimit[], rate: RateLimit | undefined, scope: ResolveScope, path: string): Promise<string[]> {
    const base = path ? `${path}.` : '';
    const fields: [unknown, string][] = [...limits.map((c, i): [unknown, string] => [c.key, `${base}concurrency[${i}].key`]), ...(rate ? [[rate.key, `${base}rateLimit.key`] as [unknown, string]] : [])];
    return Promise.all(fields.map(async ([value, at]) => {
      const v = await resolveValue(value, scope, at);
      if ((typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') || v === '') throw new StepError('INVALID_KEY', `${at} gave ${v === '' ? 'an empty string' : JSON.stringify(v) ?? 'nothing'}: a key must be a non-empty string or a number`, { details: { path: at } });
      return String(v);
    }));
  }

  private async decide(step: Step, snap: WorkflowSnapshot, attempt: number): Promise<StepDecision> {
    const now = Date.now();
    // Only a step that is queued now: an entry left from before a resume is not this run's.
    const q = inspectSnapshot(snap).phases[step.id] === 'queued' ? queuedStep(snap.context, step.id) : undefined;
    const keys = q?.keys ?? (await this.evaluate(step.concurrency ?? [], step.rateLimit, await this.host.scope(step, snap), this.host.pathOf(step)));
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
  private async decideExecution(snap: WorkflowSnapshot, scope: ResolveScope): Promise<WorkflowEvent | undefined> {
    const limits = snap.context.definition.concurrency!;
    const q = snap.context.executionQueued;
    const keys = q?.keys ?? (await this.evaluate(limits, undefined, scope, ''));
    const got = await this.admission.take(limits.map((c, i) => ({ key: keys[i], limit: c.limit })), { id: this.executionId, executionId: this.executionId }, snap.context.admitted === true);
    if (snap.context.admitted) return undefined;
    if (got.granted) return { type: 'ExecutionAdmitted', keys, ...(q ? { queuedMs: Math.max(0, Date.now() - Date.parse(q.since)) } : {}) };
    return q ? undefined : { type: 'ExecutionQueued', keys, since: new Date().toISOString() };
  }

  /** Whether the execution must be admitted (or take its slots back) before a step runs. */
  needsExecutionAdmission(snap: WorkflowSnapshot): boolean {
    return snap.context.definition.concurrency !== undefined && !this.admission.holds(this.executionId);
  }

  /** Whether `holder` names what waits in this snapshot: a queued step attempt, or the queued execution. */
  private waits(snap: WorkflowSnapshot, holder: string): boolean {
    if (holder === this.executionId) return (snap.value as unknown) === 'queued';
    const [, stepId, attempt] = holder.split(':');
    const q = queuedStep(snap.context, stepId);
    return q !== undefined && q.attempt === Number(attempt) && inspectSnapshot(snap).phases[stepId] === 'queued';
  }

  /** After a record: slots of steps that stopped running go back; an LLM call's tokens count against its rate key. */
  afterRecord(event: WorkflowEvent, after: WorkflowSnapshot): void {
    // A failed attempt's tokens were spent all the same.
    if ((event.type === 'StepCompleted' || event.type === 'StepFailed') && event.usage && this.steps.get(event.stepId)?.rateKey !== undefined) {
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

  /** The runner stops hosting: no more tries, and every slot it holds goes back. */
  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.parked.clear();
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
