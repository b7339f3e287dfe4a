/**
 * Concurrency and rate keys for one runner (kept here, so the runner only
 * calls in): whether a step (or the execution) starts now or is queued, and
 * with which record; a queued one is parked until a wake command, or waits on
 * a durable timer for its reserved rate time; which slots go back after a
 * record, and which tokens count against a rate key. Keys are evaluated once,
 * when first admitted or queued, and recorded; a queued step or execution is
 * re-admitted with the recorded keys, and never reserves a rate time twice.
 */
import { admitsExecutions, inspectSnapshot, isTerminal, queuedStep, statusOf, stepMapGet, type QueuedExecution, type QueuedStep, type StepStarted, type WorkflowEvent, type WorkflowSnapshot } from '../../machines/index.js';
import type { ConcurrencyLimit, RateLimit, Step } from '../../machines/definition.js';
import { findStep } from '../../machines/blocks.js';
import { resolveValue, type ResolveScope } from '../definition/resolve.js';
import { InvalidExecutionStateError, StepError, toErrorRecord } from '../errors.js';
import type { Admission, KeyLimit } from './admission.js';
import type { Holder } from './slots.js';

/** A reserved rate time this close is started at once (timer granularity). */
const SLACK_MS = 2;

/** What the runner lends: its records, its start of an admitted step, its reaction to the snapshot. */
export interface LimitsHost {
  readonly workflowId: string;
  readonly snapshot: WorkflowSnapshot;
  readonly isStopped: boolean;
  /** Record an event (once per key and record type while it is being recorded). */
  record(key: string, event: WorkflowEvent): void;
  /** Record the start of an admitted step, with these fields. */
  startAdmitted(step: Step, attempt: number, fields: Pick<StepStarted, 'keys' | 'queuedMs'>): void;
  /** Look at the snapshot again and do what it calls for. */
  react(): void;
  /** What the step's templates may read. */
  scope(step: Step, snap: WorkflowSnapshot): Promise<ResolveScope>;
  /** The step's path in the definition, for errors. */
  pathOf(step: Step): string;
  /** Keep a durable timer (any worker fires it as a `timer` command), before its record. */
  armTimer?(stepId: string, attempt: number, at: string): Promise<void>;
}

/** The name under which the execution's own admission is tracked (never a step id). */
const EXECUTION = '(execution)';
/** The step id of an execution's rate timer: `=` is never in a step id, and KV keys allow it. */
export const EXECUTION_TIMER = '=execution';

type Decision =
  /** Start the step: these fields go into its StepStarted. */
  | { start: Pick<StepStarted, 'keys' | 'queuedMs'> }
  /** Record this (StepQueued, ExecutionQueued, ExecutionAdmitted); `timer`: a reserved rate time to keep first. */
  | { record: WorkflowEvent; timer?: string }
  /** Queued already: try again at this time (a reserved rate time), or when woken (undefined). */
  | { retryAt?: number }
  /** Admitted before: its slots are taken back, nothing to record. */
  | { readmitted: true };

export const isLimited = (step: Step): boolean => step.concurrency !== undefined || step.rateLimit !== undefined;

/** Whether a queued step (or, without a step, the queued execution) waits for its rate time and that comes by `time` (epoch ms). */
export function startsBy(snap: WorkflowSnapshot, stepId: string | undefined, time: number): boolean {
  const q = stepId === undefined ? ((snap.value as unknown) === 'queued' ? snap.context.executionQueued : undefined) : queuedStep(snap.context, stepId);
  return q?.reason === 'rate' && q.until !== undefined && Date.parse(q.until) <= time;
}

/** A step attempt's id as a holder of keys. */
const stepHolder = (executionId: string, stepId: string, attempt: number) => `${executionId}:${stepId}:${attempt}`;

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
  /** The execution is admitted, and holds its workflow-level slots here. */
  private executionHeld = false;
  /**
   * Admitted, but the start (StepStarted, ExecutionAdmitted) not recorded yet: not idle. Their
   * places in the queues are given up already, so a runner that stops before the record wakes
   * them again (any worker re-admits them).
   */
  private readonly granted = new Map<string, { holder: Holder; keys: string[] }>();

  constructor(private readonly admission: Admission, private readonly executionId: string, private readonly host: LimitsHost) {}

  /** An admission is under way: the execution may start a step any moment, so it is not idle. */
  get busy(): boolean {
    return this.admitting.size > 0 || this.granted.size > 0;
  }

  /** Whether a queued step is to be tried now (not under way, parked, or waiting for its rate time). */
  due(stepId: string): boolean {
    return !this.admitting.has(stepId) && !this.parked.has(stepId) && !this.timers.has(stepId);
  }

  /** Whether the execution must be admitted (or take its slots back) before a step runs. */
  needsExecutionAdmission(snap: WorkflowSnapshot): boolean {
    return admitsExecutions(snap.context.definition) && !this.executionHeld;
  }

  /**
   * Admit a step: admitted, it starts (its StepStarted says its keys and how long it queued);
   * over a limit, it is queued (StepQueued), or stays queued until it is woken or its reserved
   * rate time comes. A key that cannot be read fails the step.
   */
  admitStep(step: Step, snap: WorkflowSnapshot, attempt: number): void {
    this.settle(step.id, () => this.decideStep(step, snap, attempt), (fields) => this.host.startAdmitted(step, attempt, fields),
      (err) => ({ type: 'StepFailed', stepId: step.id, attempt, error: toErrorRecord(err) }));
  }

  /** Admit the execution (workflow-level keys): ExecutionAdmitted, or ExecutionQueued and wait. */
  admitExecution(snap: WorkflowSnapshot): void {
    if (!this.due(EXECUTION)) return;
    this.settle(EXECUTION, () => this.decideExecution(snap), () => undefined, (err) => ({ type: 'ExecutionFailed', error: toErrorRecord(err) }));
  }

  private settle(id: string, decide: () => Promise<Decision>, start: (fields: Pick<StepStarted, 'keys' | 'queuedMs'>) => void, failed: (err: unknown) => WorkflowEvent): void {
    if (this.admitting.has(id)) return;
    this.admitting.add(id);
    const wakes = this.wakes;
    void decide()
      .then(async (decision) => {
        // The timer is kept before its record: a crash in between leaves a timer found spent, never a lost one.
        if ('record' in decision && decision.timer !== undefined) {
          const attempt = decision.record.type === 'StepQueued' ? decision.record.attempt : 1;
          await this.host.armTimer?.(id === EXECUTION ? EXECUTION_TIMER : id, attempt, decision.timer);
        }
        return decision;
      })
      .then((decision) => {
        this.admitting.delete(id);
        // Stopped meanwhile: a slot just taken goes back (and its holder is woken again).
        if (this.host.isStopped) return this.stop();
        if ('start' in decision) return start(decision.start);
        if ('record' in decision) return this.host.record(id, decision.record);
        if ('readmitted' in decision) return this.host.react();
        if (decision.retryAt !== undefined) {
          this.timers.set(id, setTimeout(() => { this.timers.delete(id); if (!this.host.isStopped) this.host.react(); }, decision.retryAt - Date.now()));
        } else if (wakes === this.wakes) this.parked.add(id);
        this.host.react();
      }, (err) => {
        this.admitting.delete(id);
        if (!this.host.isStopped) this.host.record(id, failed(err));
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

  /** Whether a due timer is a queued step's (or the queued execution's) reserved rate time: then it is tried again, nothing is recorded. */
  isRateTimer(stepId: string, at: string | undefined): boolean {
    if (at === undefined) return false;
    const snap = this.host.snapshot;
    if (stepId === EXECUTION_TIMER) return (snap.value as unknown) === 'queued' && snap.context.executionQueued?.until === at;
    return queuedStep(snap.context, stepId)?.until === at;
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

  /**
   * The rate key first (its reserved time is recorded, so it is reserved once), then a slot of
   * every concurrency key. `queue(reason, until)` is the record of a wait; undefined when the
   * same wait is recorded already.
   */
  private async limit(
    limits: ConcurrencyLimit[], rate: RateLimit | undefined, keys: string[], q: QueuedStep | QueuedExecution | undefined, holder: Holder,
    queue: (reason: 'rate' | 'concurrency', until: number | undefined) => WorkflowEvent,
  ): Promise<Decision | undefined> {
    const now = Date.now();
    let until = q?.until !== undefined ? Date.parse(q.until) : undefined;
    if (rate && until === undefined) {
      until = await this.admission.store.reserve(keys[keys.length - 1], rate.perMinute);
      if (until > now + SLACK_MS) return { record: queue('rate', until), timer: new Date(until).toISOString() };
    }
    if (until !== undefined && until > now + SLACK_MS) return { retryAt: until };
    if (limits.length > 0) {
      const got = await this.admission.take(limits.map((c, i): KeyLimit => ({ key: keys[i], limit: c.limit })), holder);
      if (!got.granted) return q?.reason === 'concurrency' ? {} : { record: queue('concurrency', until) };
    }
    return undefined;
  }

  private async decideStep(step: Step, snap: WorkflowSnapshot, attempt: number): Promise<Decision> {
    // Only a step that is queued now: an entry left from before a resume is not this run's.
    const q = inspectSnapshot(snap).phases[step.id] === 'queued' ? queuedStep(snap.context, step.id) : undefined;
    const keys = q?.keys ?? (await this.evaluate(step.concurrency ?? [], step.rateLimit, await this.host.scope(step, snap), this.host.pathOf(step)));
    const since = q?.since ?? new Date().toISOString();
    const holder = stepHolder(this.executionId, step.id, attempt);
    const wait = await this.limit(step.concurrency ?? [], step.rateLimit, keys, q, { id: holder, executionId: this.executionId, stepId: step.id, attempt },
      (reason, until) => ({ type: 'StepQueued', stepId: step.id, attempt, keys, since, reason, ...(until !== undefined ? { until: new Date(until).toISOString() } : {}) }));
    if (wait) return wait;
    this.steps.set(step.id, { holder, ...(step.rateLimit ? { rateKey: keys[keys.length - 1] } : {}) });
    this.granted.set(step.id, { holder: { id: holder, executionId: this.executionId, stepId: step.id, attempt }, keys: keys.slice(0, step.concurrency?.length ?? 0) });
    return { start: { keys, ...(q ? { queuedMs: Math.max(0, Date.now() - Date.parse(q.since)) } : {}) } };
  }

  /** An execution admitted before (hosted again) takes its slots back whatever the count: its record stands. */
  private async decideExecution(snap: WorkflowSnapshot): Promise<Decision> {
    const def = snap.context.definition;
    const limits = def.concurrency ?? [];
    const holder: Holder = { id: this.executionId, executionId: this.executionId };
    if (snap.context.admitted) {
      const keys = snap.context.admittedKeys ?? [];
      if (limits.length > 0) await this.admission.take(limits.map((c, i) => ({ key: keys[i], limit: c.limit })), holder, true);
      this.executionHeld = true;
      return { readmitted: true };
    }
    const q = (snap.value as unknown) === 'queued' ? snap.context.executionQueued : undefined;
    const scope = { input: snap.context.input, steps: {}, execution: { id: this.executionId, workflowId: this.host.workflowId } };
    const keys = q?.keys ?? (await this.evaluate(limits, def.rateLimit, scope, ''));
    const since = q?.since ?? new Date().toISOString();
    const wait = await this.limit(limits, def.rateLimit, keys, q, holder,
      (reason, until) => ({ type: 'ExecutionQueued', keys, since, reason, ...(until !== undefined ? { until: new Date(until).toISOString() } : {}) }));
    if (wait) return wait;
    this.executionHeld = true;
    this.granted.set(EXECUTION, { holder, keys: keys.slice(0, limits.length) });
    return { record: { type: 'ExecutionAdmitted', keys, ...(q ? { queuedMs: Math.max(0, Date.now() - Date.parse(q.since)) } : {}) } };
  }

  /**
   * Whether `holder` may still wait here: the queued execution, or a queued step attempt; also
   * one whose queueing is being recorded right now (still `pending`, or not yet admitted), so a
   * wake that overtakes its record does not drop it from the queue.
   */
  private waits(snap: WorkflowSnapshot, holder: string): boolean {
    if (isTerminal(statusOf(snap))) return false;
    if (holder === this.executionId) return (snap.value as unknown) === 'queued' || (admitsExecutions(snap.context.definition) && !snap.context.admitted);
    const [, stepId, attempt] = holder.split(':');
    const phase = inspectSnapshot(snap).phases[stepId];
    const recorded = stepMapGet(snap.context.attempts, stepId) ?? 0;
    if (phase === 'queued') return queuedStep(snap.context, stepId)?.attempt === Number(attempt);
    return (phase === 'pending' || phase === 'backoff') && recorded < Number(attempt);
  }

  /** After a record: slots of steps that stopped running go back; an LLM call's tokens count against its rate keys. */
  afterRecord(event: WorkflowEvent, after: WorkflowSnapshot): void {
    // A failed attempt's tokens were spent all the same.
    if ((event.type === 'StepCompleted' || event.type === 'StepFailed') && event.usage) this.spend(event.stepId, event.usage.totalTokens, after);
    const ended = isTerminal(statusOf(after));
    const phases = ended ? {} : inspectSnapshot(after).phases;
    for (const id of this.granted.keys()) {
      const recorded = id === EXECUTION ? after.context.admitted === true : phases[id] !== 'pending' && phases[id] !== 'queued' && phases[id] !== 'backoff';
      if (ended || recorded) this.granted.delete(id);
    }
    for (const [stepId, { holder }] of this.steps) {
      const attempt = Number(holder.slice(holder.lastIndexOf(':') + 1));
      const stillRuns = (phases[stepId] === 'running' || phases[stepId] === 'waiting') && stepMapGet(after.context.attempts, stepId) === attempt;
      if (stillRuns) continue;
      this.steps.delete(stepId);
      void this.admission.release(holder).catch(() => undefined);
    }
    if (ended) void this.admission.release(this.executionId).catch(() => undefined);
  }

  /** Tokens against the step's rate key and the workflow's. */
  private spend(stepId: string, tokens: number, snap: WorkflowSnapshot): void {
    const stepRate = findStep(snap.context.definition, stepId)?.rateLimit?.tokensPerMinute;
    const stepKey = this.steps.get(stepId)?.rateKey;
    if (stepRate && stepKey !== undefined) this.admission.store.spend(stepKey, tokens, stepRate).catch(() => undefined);
    const flowRate = snap.context.definition.rateLimit?.tokensPerMinute;
    const flowKey = snap.context.admittedKeys?.at(-1);
    if (flowRate && flowKey !== undefined) this.admission.store.spend(flowKey, tokens, flowRate).catch(() => undefined);
  }

  /**
   * The runner stops hosting: no more tries, and every slot it holds goes back (admitted but
   * unrecorded ones are woken again once it has). `handedOver`: another process hosts the execution
   * now and holds the same leases (named by execution, step and attempt): they are only forgotten here.
   */
  stop(handedOver = false): void {
    const regrant = new Map([...this.granted.values()].map((g) => [g.holder.id, g] as const));
    this.granted.clear();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.parked.clear();
    if (handedOver) {
      for (const { holder } of this.steps.values()) this.admission.forget(holder);
      this.steps.clear();
      this.admission.forget(this.executionId);
      return;
    }
    const release = (id: string) => void this.admission.release(id).then(() => {
      const g = regrant.get(id);
      if (g && g.keys.length > 0) return this.admission.wakeAll(g.keys[0], [{ ...g.holder, since: Date.now() }], `stopped:${Date.now()}`);
    }).catch(() => undefined);
    for (const { holder } of this.steps.values()) release(holder);
    this.steps.clear();
    release(this.executionId);
  }
}
