/**
 * Hosts one execution: an XState actor whose every transition is appended to
 * the event log before anything follows from it. The machine decides (which
 * steps are pending, retrying, failed, done); the runner carries it out — runs
 * steps through their executors, waits out retry delays, and sends the outcome
 * back as the next event. If another writer appends first, the runner stops
 * and leaves the execution to it.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { Actor } from 'xstate';
import { actorFrom } from '../../machines/actor.js';
import {
  allStepsDone,
  isCheckpointEvent,
  inspectSnapshot,
  canRetry,
  finalOutput,
  isTerminal,
  retryDelayMs,
  statusOf,
  stepPhases,
  stepMapGet,
  stepMapHas,
  emptyStepMap,
  type ErrorInfo,
  type Usage,
  type ExecutionStatus,
  type WorkflowEvent,
  type WorkflowMachine,
  type WorkflowSnapshot,
} from '../../machines/index.js';
import { eventSignalName, isContainer, type ContainerStep, type LoopStep, type MapStep, type Step, type WorkflowStep } from '../../machines/definition.js';
import { nextItems, progressOf, runningCount, type MapProgress } from '../../machines/containers/map.js';
import { childOf } from '../../machines/containers/workflow.js';
import { blockDefinition, blockReadsInput, childIdFor, outerRefs, type ChildHost } from './children.js';
import { childBudget, itemBudget, itemBudgets } from './childBudgets.js';
import { inlineRecords, runInlineItem, runsInline } from './inlineItems.js';
import type { WaitStore } from '../events/waitStore.js';
import { evaluateWhen, resolveTemplates, type TemplateScope } from '../definition/templates.js';
import { evaluateCondition, resolveStep, resolveValue, rootsReadBy, type ResolveScope } from '../definition/resolve.js';
import { waitAfterTime } from '../events/waitAfter.js';
import { isExpression } from '../definition/expressions.js';
import { findStep, stepIndex, walkSteps } from '../../machines/blocks.js';
import { stepsReferencedBy } from '../definition/stepRefs.js';
import { ConcurrencyError, InvalidExecutionStateError, MessageTooLargeError, StepError, toErrorRecord } from '../errors.js';
import type { EventLog, LogPosition } from '../log/eventLog.js';
import type { StoredRecord } from '../log/records.js';
import type { StepExecutors } from '../steps/types.js';
import { SNAPSHOT_EVERY, type SnapshotStore } from '../log/snapshots.js';
import { isPayloadRef } from '../payloads/refs.js';
import { resolveScopeRefs, scopeHoldsRefs } from '../payloads/scope.js';
import type { PayloadStore } from '../payloads/store.js';
import type { TimerStore } from '../timers/timerStore.js';
import { recordedTimer, setLongTimeout, timerEvent, timerFields } from './stepTimers.js';
import { withinHistoryLimit } from './historyLimit.js';
import { ExecutionSecrets } from '../secrets/executionSecrets.js';
import { SecretStore, type SecretResolver } from '../secrets/secretStore.js';
import type { Principal, StepStarted } from '../../machines/events.js';
import type { Admission } from '../concurrency/admission.js';
import { isLimited, startsBy, RunnerLimits } from '../concurrency/runnerLimits.js';

export interface RunnerDeps {
  log: EventLog;
  executors: StepExecutors;
  /** Where values over the inline threshold go; records carry refs to them. */
  payloads: PayloadStore;
  now?: () => Date;
  /** After every appended record (printing, indexing, metrics). */
  onRecord?: (stored: StoredRecord, snapshot: WorkflowSnapshot) => void;
  /** Snapshots every SNAPSHOT_EVERY records, at a checkpoint, so long histories resume fast. */
  snapshots?: SnapshotStore;
  onError?: (err: unknown, context: string) => void;
  /** Where steps' timers are kept for every worker to fire (sleeps, signal timeouts); without it only this runner fires them. */
  timers?: TimerStore;
  /** Records one execution's history may hold; the last one ends it FAILED (HISTORY_LIMIT). */
  historyLimit?: number;
  /** Where waitForEvent steps register their waits, for every worker's dispatcher to match events against. */
  waits?: WaitStore;
  /** Where `{{secrets.NAME}}` comes from; default: SMARTSPEC_SECRET_* of this process's environment. */
  secrets?: SecretResolver;
  /** Starts and cancels child executions (`workflow` steps, map items); without it those steps fail. */
  children?: ChildHost;
  /** Concurrency and rate keys (src/concurrency); without it `concurrency` and `rateLimit` are not enforced. */
  admission?: Admission;
}

export interface RunnerOutcome {
  status: ExecutionStatus;
  snapshot: WorkflowSnapshot;
}

/** Thrown into a step's signal when the runner stops it. */
class Stopped extends Error {}

export class ExecutionRunner {
  private actor: Actor<WorkflowMachine>;
  /** Steps whose executor is running; they share one controller, as they are only ever aborted together. */
  private readonly inflight = new Set<string>();
  private stepsController?: AbortController;
  /** Steps whose outcome is being appended: still `running` in the snapshot, but not to be run again. */
  private readonly reporting = new Set<string>();
  /** Pending retry delays and signal timeouts, by step; each entry cancels its own timer. */
  private readonly timers = new Map<string, () => void>();
  /** Steps whose StepStarted (or skip) is queued but not yet appended. */
  private readonly starting = new Set<string>();
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  /** Shutting down: steps in flight finish and are recorded, no new one starts. */
  private holding = false;
  private sinceSnapshot = 0;
  /** Identifies this runner's appends (message ids), so another writer never looks like a retry of ours. */
  private readonly writer = randomUUID();
  private resolveDone!: (o: RunnerOutcome) => void;
  private rejectDone!: (e: unknown) => void;
  /** Settles when the execution ends, the runner is stopped, or the log is lost to another writer. */
  readonly done: Promise<RunnerOutcome>;
  private idleWaiters: { resolve: (o: RunnerOutcome) => void; wakeWithinMs: number }[] = [];
  /** Steps whose timer is armed in the timer store, with the attempt: disarmed when that attempt stops waiting. */
  private readonly armed = new Map<string, number>();
  /** What a waitForEvent step about to start lets its match expression read (kept with its wait). */
  private readonly waitScopes = new Map<string, Record<string, unknown>>();
  readonly workflowId: string;
  /** Secrets used so far, and the redaction of everything recorded after them. */
  private readonly secrets: ExecutionSecrets;
  /** Child executions this runner has made sure exist (started, or found). */
  private readonly ensured = new Set<string>();
  /** Map items' reports waiting for the log, by map: recorded together. */
  private readonly itemReports = new Map<string, { events: WorkflowEvent[]; recorded: Promise<void> }>();
  /** Each map's items, once read (a large array is recorded by reference). */
  private readonly itemsOf = new Map<string, Promise<unknown[]>>();
  /** Concurrency and rate keys of this execution's steps and of the execution itself. */
  private readonly limits?: RunnerLimits;
  /** Children being made sure of (their start command not yet sent): the execution is not let go meanwhile. */
  private ensuring = 0;
  /** When a map last started items or recorded their reports (ms since the epoch). */
  private itemActivityAt = -Infinity;
  private idleRecheck?: NodeJS.Timeout;

  constructor(
    private readonly deps: RunnerDeps,
    readonly executionId: string,
    snapshot: WorkflowSnapshot,
    private position: LogPosition | null,
    /** Records the history already holds (0 for a new execution). */
    private recorded = 0,
  ) {
    this.workflowId = snapshot.context.definition.id;
    this.secrets = new ExecutionSecrets(deps.secrets ?? SecretStore.fromEnv());
    if (deps.admission) {
      const runner = this;
      this.limits = new RunnerLimits(deps.admission, executionId, {
        workflowId: this.workflowId,
        get snapshot() { return runner.snapshot; },
        get isStopped() { return runner.stopped; },
        // Once per key and record type: an ExecutionAdmitted decided while its ExecutionQueued is still settling must not be taken for a repeat of it.
        record: (key, event) => this.enqueueOnce(`${key}:${event.type}`, event),
        startAdmitted: (step, attempt, fields) => this.start(step, this.snapshot, attempt, fields),
        react: () => this.react(),
        scope: (step, snap) => this.scopeFor(step, snap),
        pathOf: (step) => this.pathOf(step),
        ...(deps.timers ? { armTimer: (stepId: string, attempt: number, at: string) => deps.timers!.arm({ executionId, stepId, attempt, at }) } : {}),
      });
    }
    this.actor = actorFrom(snapshot);
    this.done = new Promise((res, rej) => { this.resolveDone = res; this.rejectDone = rej; });
    this.done.catch(() => undefined); // observed by whoever awaits it
  }

  /**
   * Settles at the next point where nothing runs: the end (as `done`), or WAITING for a
   * signal or a sleep. Not at a sleep that wakes within `wakeWithinMs` (Infinity: no sleep).
   */
  settled({ wakeWithinMs = 0 }: { wakeWithinMs?: number } = {}): Promise<RunnerOutcome> {
    if (this.stopped) return this.done;
    if (this.idleAt(wakeWithinMs)) return Promise.resolve(this.outcome());
    const settles = new Promise<RunnerOutcome>((resolve) => this.idleWaiters.push({ resolve, wakeWithinMs }));
    this.recheckIdleLater();
    return Promise.race([this.done, settles]);
  }

  /**
   * Nothing under way that a release would cut off: no key being admitted, no child being made sure
   * of, no record being decided or appended (a map's launch record, once appended, starts its items:
   * let go before, the items were recorded as started and never started).
   */
  private get idle(): boolean {
    return !this.limits?.busy && this.ensuring === 0 && this.starting.size === 0 && this.reporting.size === 0;
  }

  /** Idle waiters kept because a map heard from its items lately: looked at again once that is long enough ago. */
  private recheckIdleLater(): void {
    clearTimeout(this.idleRecheck);
    const ms = Math.min(...this.idleWaiters.map((w) => w.wakeWithinMs));
    const at = this.itemActivityAt + ms;
    if (this.idleWaiters.length === 0 || !Number.isFinite(at)) return;
    this.idleRecheck = setTimeout(() => this.settleIdleWaiters(), Math.max(0, at - this.now().getTime()) + 1);
  }

  /** Resolve the idle waiters the current snapshot satisfies (WAITING, nothing waking within their bound). */
  private settleIdleWaiters(): void {
    if (this.stopped || this.idleWaiters.length === 0 || !this.idle) return;
    const snap = this.snapshot;
    const status = statusOf(snap);
    if (status !== 'WAITING') return;
    const waiters = this.idleWaiters;
    this.idleWaiters = waiters.filter((w) => this.wakesWithin(snap, w.wakeWithinMs));
    for (const w of waiters) if (!this.idleWaiters.includes(w)) w.resolve({ status, snapshot: snap });
    this.recheckIdleLater();
  }

  /** Idle at WAITING: nothing to do until a command or a timer more than `wakeWithinMs` away (the same test `passivate` makes). */
  private idleAt(wakeWithinMs: number): boolean {
    return this.status === 'WAITING' && this.idle && !this.wakesWithin(this.snapshot, wakeWithinMs);
  }

  /** Whether a waiting sleep of the current stage wakes within `ms` from now (or it waits for child executions, see below). */
  private wakesWithin(snap: WorkflowSnapshot, ms: number): boolean {
    if (ms <= 0) return false;
    const { active } = inspectSnapshot(snap);
    // A map waiting for its items stays while they start or report within `ms` of each other (each
    // report would otherwise take it over again); once they go quiet it is let go like any waiting
    // execution, and an item's report brings it back. A `workflow` step's one child may wait long.
    const now = this.now().getTime();
    const itemsBusy = ms === Infinity || now - this.itemActivityAt < ms;
    if (active.some(({ step: st, phase }) => phase === 'waiting' && ((st.type === 'map' && itemsBusy) || (ms === Infinity && st.type === 'workflow')))) return true;
    const limit = now + ms;
    return startsBy(snap, undefined, limit) || active.some(({ step: st, phase }) => (st.type === 'sleep' && phase === 'waiting' && (recordedTimer(st, snap)?.at ?? Infinity) <= limit)
      || (phase === 'queued' && startsBy(snap, st.id, limit)));
  }

  private now(): Date {
    return this.deps.now?.() ?? new Date();
  }

  private outcome(): RunnerOutcome {
    return { status: this.status, snapshot: this.snapshot };
  }

  get snapshot(): WorkflowSnapshot { return this.actor.getSnapshot(); }
  get status(): ExecutionStatus { return statusOf(this.snapshot); }
  get lastSeq(): number { return this.position?.seq ?? 0; }
  get isStopped(): boolean { return this.stopped; }

  /**
   * Append an event as the next transition. `next` is given for
   * ExecutionResumed, whose snapshot is rebuilt rather than transitioned to.
   */
  commit(event: WorkflowEvent, next?: WorkflowSnapshot): Promise<void> {
    const run = this.queue.then(() => this.append(this.withIteration(event), next));
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** A record of a step inside a loop says which iteration it belongs to; inside a map item's child, which item. */
  private withIteration(event: WorkflowEvent): WorkflowEvent {
    if (!('stepId' in event) || event.stepId === undefined || event.type === 'SignalReceived') return event;
    const outer = this.snapshot.context.outer;
    if (outer && event.type !== 'ExecutionFailed' && event.item === undefined) event = { ...event, item: outer.index };
    if ((event as { iteration?: number }).iteration !== undefined) return event;
    const step = findStep(this.snapshot.context.definition, event.stepId!);
    const loop = step && this.loopOf(step);
    if (!loop) return event;
    const iteration = stepMapGet(this.snapshot.context.iterations ?? emptyStepMap<number>(), loop.id);
    return iteration === undefined ? event : ({ ...event, iteration } as WorkflowEvent);
  }

  /** Start (or continue) running: call once after construction or a resume commit. */
  kick(): void {
    this.react();
  }

  async cancel(reason?: string, principal?: Principal): Promise<void> {
    const event: WorkflowEvent = { type: 'ExecutionCancelled', ...(reason ? { reason } : {}), ...(principal ? { principal } : {}) };
    if (!this.snapshot.can(event)) throw new InvalidExecutionStateError(`execution '${this.executionId}' is ${this.status} and cannot be cancelled`);
    this.abortSteps('cancelled'); // at once: in-flight requests are aborted before the record is written
    await this.commit(event);
  }

  async signal(name: string, payload: unknown, principal?: Principal): Promise<void> {
    const waiting = [...walkSteps(this.snapshot.context.definition.steps)].map((v) => v.step)
      .find((s) => (s.type === 'signal' && (s.name ?? s.id) === name) || (s.type === 'waitForEvent' && eventSignalName(s.id) === name));
    const event: WorkflowEvent = { type: 'SignalReceived', name, payload, ...(waiting ? { stepId: waiting.id } : {}), ...(principal ? { principal } : {}) };
    await this.commit(event);
  }

  /**
   * A child execution ended: record it as its parent step's result. A map item's report waits for
   * the log with the others that arrive meanwhile, and they go in one record (results, failures);
   * one that no longer applies (repeated, or its map moved on) is left out.
   */
  async childEnded(event: WorkflowEvent): Promise<void> {
    if ((event.type !== 'StepCompleted' && event.type !== 'StepFailed') || event.index === undefined) return this.commit(event);
    let batch = this.itemReports.get(event.stepId);
    if (!batch) {
      batch = { events: [], recorded: Promise.resolve() };
      this.itemReports.set(event.stepId, batch);
      batch.recorded = this.recordItemReports(event.stepId);
    }
    batch.events.push(event);
    return batch.recorded;
  }

  private recordItemReports(stepId: string): Promise<void> {
    const run = this.queue.then(async () => {
      const { events } = this.itemReports.get(stepId)!;
      this.itemReports.delete(stepId);
      const snap = this.snapshot;
      const running = progressOf(snap.context, stepId)?.running ?? {};
      const seen = new Set<number>();
      const live = events.filter((e) => {
        const { index, child } = e as { index: number; child?: string };
        if (running[String(index)] !== child || seen.has(index)) return false;
        seen.add(index);
        return true;
      });
      const attempt = stepMapGet(snap.context.attempts, stepId) ?? 1;
      const results = live.flatMap((e) => (e.type === 'StepCompleted' ? [{ index: e.index!, child: e.child!, output: e.output, ...(e.usage ? { usage: e.usage } : {}) }] : []));
      const failures = live.flatMap((e) => (e.type === 'StepFailed' ? [{ index: e.index!, child: e.child!, error: e.error }] : []));
      if (results.length > 0) await this.append(this.withIteration({ type: 'StepCompleted', stepId, attempt, output: null, results }));
      if (failures.length > 0) await this.append(this.withIteration({ type: 'StepFailed', stepId, attempt, error: failures[0].error, failures }));
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Start no new step, retry or timer from now on; steps in flight finish and are recorded (shutdown). */
  holdNewSteps(): void {
    this.holding = true;
  }

  /** A step runs or an outcome is being appended: stopping now would waste or repeat work. */
  get busy(): boolean {
    return !this.stopped && (this.inflight.size > 0 || this.reporting.size > 0 || this.starting.size > 0);
  }

  /**
   * A step's timer is due: record what it means (a sleep ends, a signal step times out).
   * Refused (InvalidExecutionStateError) when it no longer applies: the step moved on.
   */
  async fireTimer(stepId: string, attempt: number, at?: string): Promise<void> {
    // A step queued on a rate key: its reserved time has come; it is admitted again (not a record).
    // Its timer stays armed until it fires for a step that started (then it is found spent): a stop before the start is retried.
    if (this.limits?.isRateTimer(stepId, at)) return this.react();
    const step = findStep(this.snapshot.context.definition, stepId);
    const event = step && timerEvent(step, this.snapshot, attempt, this.now().getTime(), at);
    if (!event) throw new InvalidExecutionStateError(`step '${stepId}' of execution '${this.executionId}' has no timer for attempt ${attempt} (any more)`);
    await this.commit(event);
  }

  /**
   * A slot of a key it waits for may be free (a `wake` command): admit again. Refused
   * (InvalidExecutionStateError) when `holder` no longer waits here, so its place in the queue goes.
   */
  wake(holder: string): void {
    if (!this.limits) throw new InvalidExecutionStateError(`execution '${this.executionId}' is hosted without concurrency keys`);
    this.limits.wake(holder);
  }

  /**
   * Passivation: stop hosting if it is still idle at WAITING, as `settled` found it (no sleep due
   * within `wakeWithinMs`, nothing being admitted). A command taken since it settled (a wake, a
   * signal) may have set it going again: then it is kept, and false says so.
   */
  passivate(wakeWithinMs: number): boolean {
    if (this.stopped) return true;
    if (!this.idleAt(wakeWithinMs)) return false;
    this.stop();
    return true;
  }

  /** Stop hosting without writing anything (shutdown, passivation). */
  stop({ handedOver = false }: { handedOver?: boolean } = {}): void {
    if (this.stopped) return;
    this.stopped = true;
    // Handed over (another process continues the execution): its slots are that process's now
    // (a lease is named by execution, step and attempt), so they are forgotten here, not given back.
    this.limits?.stop(handedOver);
    this.abortSteps('stopped');
    this.resolveDone({ status: this.status, snapshot: this.snapshot });
  }

  private async append(event: WorkflowEvent, next?: WorkflowSnapshot): Promise<void> {
    if (this.stopped) throw new InvalidExecutionStateError(`execution '${this.executionId}' is no longer hosted here`);
    if (this.deps.historyLimit !== undefined && !next) event = withinHistoryLimit(event, this.recorded, this.deps.historyLimit);
    const current = this.actor.getSnapshot();
    if (next) {
      this.actor.stop();
      this.actor = actorFrom(next);
    } else {
      this.actor.send(event);
      // An event no transition takes leaves the very same snapshot: refuse it, write nothing.
      if (this.actor.getSnapshot() === current) throw new InvalidExecutionStateError(describeRefusal(event, current), { state: current.value });
    }
    const after = this.actor.getSnapshot();
    // The envelope first: V8 takes a slow path for properties added after a spread (µs per record).
    let body: Record<string, unknown> = { executionId: this.executionId, workflowId: this.workflowId, at: this.now().toISOString(), state: after.value, ...event };
    const timerAt = event.type === 'StepStarted' ? (event.wakeAt ?? event.deadline) : undefined;
    const waitScope = event.type === 'StepStarted' ? this.waitScopes.get(event.stepId) : undefined;
    let stored: StoredRecord;
    try {
      // Like a timer, the wait is kept before its step starts; events stored after `afterSeq` count.
      if (waitScope && event.type === 'StepStarted' && this.deps.waits) {
        const step = this.stepById(event.stepId) as Extract<Step, { type: 'waitForEvent' }>;
        const afterSeq = await this.deps.waits.arm({ executionId: this.executionId, stepId: step.id, attempt: event.attempt, subject: step.subject, ...(step.match !== undefined ? { match: step.match } : {}), ...(event.after ? { afterMs: Date.parse(event.after) } : {}), scope: waitScope });
        this.waitScopes.delete(event.stepId);
        body = { ...body, afterSeq };
      }
      // The timer is kept before its step starts: a crash in between leaves a timer the machine will refuse, never a lost one.
      if (timerAt && this.deps.timers) await this.deps.timers.arm({ executionId: this.executionId, stepId: (event as { stepId: string }).stepId, attempt: (event as { attempt: number }).attempt, at: timerAt });
      stored = await this.deps.log.append(body as never, this.position, this.writer);
    } catch (err) {
      if (err instanceof MessageTooLargeError && !next) {
        // Nothing was recorded: take the transition back, and record a failure in its place
        // (sent again, the record would be refused again: never a redelivery loop).
        const smaller = smallerEvent(event, err, current);
        if (smaller || event.type === 'SignalReceived') {
          this.actor.stop();
          this.actor = actorFrom(current);
          if (smaller) return this.append(smaller);
          throw err;
        }
      }
      // Lost the log to another writer (or it is unreachable): what is recorded stands, we stop.
      if (err instanceof ConcurrencyError) this.limits?.stop(true);
      this.stopped = true;
      this.abortSteps('stopped');
      this.rejectDone(err);
      throw err;
    }
    this.position = { seq: stored.seq, hash: stored.record.hash };
    const items = event as { launch?: unknown; results?: unknown; failures?: unknown };
    if (items.launch || items.results || items.failures) this.itemActivityAt = this.now().getTime();
    if (timerAt) this.armed.set((event as { stepId: string }).stepId, (event as { attempt: number }).attempt);
    this.limits?.afterRecord(event, after);
    if (this.armed.size > 0) this.disarmEnded(after);
    if (this.deps.waits) this.endWaits(event, current, after);
    if (this.deps.children && (current.context.maps || current.context.children)) this.cancelDroppedChildren(event, current, after);
    this.recorded++;
    this.deps.onRecord?.(stored, after);
    if (this.deps.snapshots && ++this.sinceSnapshot >= SNAPSHOT_EVERY && isCheckpointEvent(event) && !isTerminal(statusOf(after))) {
      this.sinceSnapshot = 0;
      this.deps.snapshots.save(stored, after, this.recorded).catch((err) => this.deps.onError?.(err, 'snapshot save'));
    }
    this.react();
  }

  /** Remove from the waits bucket the waits of waitForEvent steps that stopped waiting with this record. */
  private endWaits(event: WorkflowEvent, before: WorkflowSnapshot, after: WorkflowSnapshot): void {
    if (event.type === 'StepStarted') return;
    const was = stepPhases(before);
    const now = isTerminal(statusOf(after)) ? {} : stepPhases(after);
    for (const { step } of walkSteps(after.context.definition.steps)) {
      if (step.type !== 'waitForEvent' || was[step.id] !== 'waiting' || now[step.id] === 'waiting') continue;
      const attempt = stepMapGet(before.context.attempts, step.id) ?? 1;
      this.deps.waits!.disarm({ executionId: this.executionId, stepId: step.id, attempt }).catch((err) => this.deps.onError?.(err, 'wait disarm'));
    }
  }

  /** The child executions a snapshot waits for: running map items, `workflow` steps' children. */
  private liveChildren(snap: WorkflowSnapshot): Set<string> {
    const live = new Set<string>();
    const { status, active } = inspectSnapshot(snap);
    if (isTerminal(status)) return live;
    for (const { step, phase } of active) {
      if (step.type === 'map' && (phase === 'launching' || phase === 'waiting')) for (const id of Object.values(progressOf(snap.context, step.id)?.running ?? {})) live.add(id);
      else if (step.type === 'workflow' && phase === 'waiting') { const c = childOf(snap.context, step.id); if (c) live.add(c.id); }
    }
    return live;
  }

  /** Children the execution waited for and no longer does (it was cancelled or failed): cancelled, so none runs on alone. */
  private cancelDroppedChildren(event: WorkflowEvent, before: WorkflowSnapshot, after: WorkflowSnapshot): void {
    const was = this.liveChildren(before);
    if (was.size === 0) return;
    const still = this.liveChildren(after);
    const e = event as { child?: string; results?: { child: string }[]; failures?: { child: string }[] };
    const ended = new Set([e.child, ...(e.results ?? []).map((r) => r.child), ...(e.failures ?? []).map((f) => f.child)]);
    const reason = event.type === 'ExecutionCancelled' ? `its parent '${this.executionId}' was cancelled` : `its parent '${this.executionId}' no longer waits for it`;
    for (const id of was) {
      if (still.has(id) || ended.has(id)) continue;
      this.deps.children!.cancel(id, reason).catch((err) => this.deps.onError?.(err, `cancel child ${id}`));
    }
  }

  private stepById(id: string): Step | undefined {
    return findStep(this.snapshot.context.definition, id);
  }

  /** Remove from the timer store the timers whose step attempt no longer waits (ended, failed, cancelled). */
  private disarmEnded(snap: WorkflowSnapshot): void {
    const phases = isTerminal(statusOf(snap)) ? {} : stepPhases(snap);
    for (const [stepId, attempt] of this.armed) {
      if (phases[stepId] === 'waiting' && stepMapGet(snap.context.attempts, stepId) === attempt) continue;
      this.armed.delete(stepId);
      this.deps.timers?.disarm({ executionId: this.executionId, stepId, attempt }).catch((err) => this.deps.onError?.(err, 'timer disarm'));
    }
  }

  /** Look at the current snapshot and do what it calls for. */
  private react(): void {
    if (this.stopped) return;
    const snap = this.actor.getSnapshot();
    const { status, stage, active } = inspectSnapshot(snap);
    if (isTerminal(status)) return this.finish(status);

    const failed = active.find((a) => a.phase === 'failed');
    if (failed) {
      const container = this.containerOf(failed.step);
      // Inside a container: the container fails (or continues, by its onError), not the execution.
      if (container) return this.enqueueOnce(`fail:${container.id}`, { type: 'StepFailed', stepId: container.id, attempt: stepMapGet(snap.context.attempts, container.id) ?? 1, error: stepMapGet(snap.context.errors, failed.step.id)! });
      this.abortSteps('a parallel step failed');
      return this.enqueueOnce(`fail`, { type: 'ExecutionFailed', stepId: failed.step.id, error: stepMapGet(snap.context.errors, failed.step.id)! });
    }
    if (!stage && allStepsDone(snap)) return this.complete(snap);

    // A workflow-level concurrency key: no step runs before the execution holds its slot.
    const admitting = this.limits?.needsExecutionAdmission(snap) === true;
    if (admitting && !this.holding) this.limits!.admitExecution(snap);
    for (const { step, phase } of this.holding || admitting ? [] : active) {
      if (isContainer(step)) {
        if (phase === 'pending') this.beginContainer(step, snap);
        else if (phase === 'closing' && step.type === 'map') this.closeMap(step, snap);
        else if (phase === 'closing') this.enqueueOnce(`close:${step.id}`, { type: 'StepCompleted', stepId: step.id, attempt: stepMapGet(snap.context.attempts, step.id) ?? 1, output: stepMapGet(snap.context.outputs, step.id) ?? null });
        else if (phase === 'check' && step.type === 'loop') this.checkLoop(step, snap);
        else if (step.type === 'map' && (phase === 'launching' || phase === 'waiting')) this.runItems(step, snap, phase === 'launching');
      } else if (phase === 'pending') this.begin(step, snap);
      else if (step.type === 'workflow' && phase === 'waiting') this.ensureWorkflowChild(step, snap);
      else if (phase === 'queued' && this.limits?.due(step.id)) this.limits.admitStep(step, snap, stepMapGet(snap.context.attempts, step.id) ?? 1);
      else if (phase === 'running' && !this.inflight.has(step.id) && !this.reporting.has(step.id)) this.execute(step, snap);
      else if (phase === 'backoff' && !this.timers.has(step.id)) this.scheduleRetry(step, snap);
      else if (phase === 'waiting' && !this.timers.has(step.id)) this.scheduleTimer(step, snap);
    }
    this.settleIdleWaiters();
  }

  /**
   * The last stage's output. A parallel last stage gathers its steps' outputs,
   * each within the inline threshold but possibly too many together: then each
   * goes by reference, so the record stays small.
   */
  private complete(snap: WorkflowSnapshot): void {
    const output = finalOutput(snap);
    const { inlineMaxBytes } = this.deps.payloads.limits;
    if (this.starting.has('complete') || !output || typeof output !== 'object' || isPayloadRef(output) || Buffer.byteLength(JSON.stringify(output)) <= inlineMaxBytes) {
      return this.enqueueOnce('complete', { type: 'ExecutionCompleted', output });
    }
    this.starting.add('complete');
    const members = Object.entries(output as Record<string, unknown>).map(async ([id, v]) => {
      const json = JSON.stringify(v);
      return [id, isPayloadRef(v) || json.length < 256 ? v : await this.deps.payloads.put(this.executionId, Buffer.from(json))] as const;
    });
    void Promise.all(members)
      .then((entries) => Object.fromEntries(entries), () => output) // not stored: the record is tried as it is
      .then((compact) => {
        this.starting.delete('complete');
        if (!this.stopped) this.enqueueOnce('complete', { type: 'ExecutionCompleted', output: compact });
      });
  }

  private enqueueOnce(key: string, event: WorkflowEvent): void {
    if (this.starting.has(key)) return;
    this.starting.add(key);
    this.commit(event).catch(() => undefined).finally(() => {
      this.starting.delete(key);
      if (this.starting.size === 0) this.settleIdleWaiters();
    });
  }

  /** What the step's templates may read: only the outputs they refer to (not one entry per step so far). */
  private scope(snap: WorkflowSnapshot, step: Step, ids: Iterable<string> = stepsReferencedBy(step)): TemplateScope {
    const { input, outputs } = snap.context;
    const steps: TemplateScope['steps'] = {};
    for (const id of ids) if (stepMapHas(outputs, id)) steps[id] = { output: stepMapGet(outputs, id) };
    const loop = this.loopOf(step);
    const iteration = loop && stepMapGet(snap.context.iterations ?? emptyStepMap<number>(), loop.id);
    const scope = { input, steps, execution: { id: this.executionId, workflowId: this.workflowId }, ...(iteration !== undefined ? { iteration } : {}) };
    // A map item's child: its item and index, and the outer steps' outputs its block reads.
    const outer = snap.context.outer;
    if (!outer) return scope;
    for (const id of ids) if (!Object.hasOwn(steps, id) && Object.hasOwn(outer.steps, id)) steps[id] = outer.steps[id];
    // The iteration of a loop around the map, unless the step is in a loop of its own inside the item.
    const outerIteration = iteration === undefined && outer.iteration !== undefined ? { iteration: outer.iteration } : {};
    return { ...scope, ...outerIteration, item: outer.item, index: outer.index } as ResolveScope;
  }

  /** The container directly around a step, if any. */
  private containerOf(step: Step): Step | undefined {
    return stepIndex(this.snapshot.context.definition).get(step.id)?.ancestors.at(-1);
  }

  /** The innermost loop around a step (the step itself for a loop's `until`), if any. */
  private loopOf(step: Step, self = false): Step | undefined {
    if (self && step.type === 'loop') return step;
    const ancestors = stepIndex(this.snapshot.context.definition).get(step.id)?.ancestors ?? [];
    for (let i = ancestors.length - 1; i >= 0; i--) if (ancestors[i].type === 'loop') return ancestors[i];
    return undefined;
  }

  /**
   * A container about to run: read its `when`, and what it decides (a switch's case), and record
   * its start with the decision, so replay and resume never evaluate them again.
   */
  private beginContainer(step: ContainerStep, snap: WorkflowSnapshot): void {
    const key = `begin:${step.id}`;
    if (this.starting.has(key)) return;
    this.starting.add(key);
    const path = this.pathOf(step);
    const decide = async (): Promise<WorkflowEvent> => {
      const scope = await this.scopeFor(step, snap);
      if (step.when !== undefined && !(await evaluateCondition(step.when, scope, `${path}.when`))) return { type: 'StepCompleted', stepId: step.id, output: null, skipped: true };
      if (step.type === 'switch') {
        let chosen: number | 'default' | null = step.default ? 'default' : null;
        for (let i = 0; i < step.cases.length; i++) {
          if (await evaluateCondition(step.cases[i].when, scope, `${path}.cases[${i}].when`)) { chosen = i; break; }
        }
        return { type: 'StepStarted', stepId: step.id, attempt: 1, case: chosen };
      }
      if (step.type === 'map') {
        // Evaluated once and recorded (by reference when large): replay and resume read them from the log.
        const items = await resolveValue(step.items, scope, `${path}.items`);
        if (!Array.isArray(items)) throw new StepError('ITEMS_NOT_ARRAY', `${path}.items must give an array, got ${items === null ? 'null' : typeof items}`, { details: { path: `${path}.items` } });
        const recorded = await this.deps.payloads.prepare(this.executionId, items, { what: `the items of map '${step.id}'`, tooLargeCode: 'ITEMS_TOO_LARGE', tooDeepCode: 'ITEMS_TOO_DEEP' });
        return { type: 'StepStarted', stepId: step.id, attempt: 1, items: recorded, count: items.length };
      }
      return { type: 'StepStarted', stepId: step.id, attempt: 1, ...(step.type === 'loop' ? { iteration: 1 } : {}) };
    };
    void decide()
      .catch((err): WorkflowEvent => ({ type: 'StepFailed', stepId: step.id, attempt: 1, error: toErrorRecord(err) }))
      .then((event) => {
        this.starting.delete(key);
        if (!this.stopped) this.enqueueOnce(step.id, event);
      });
  }

  /** A loop's iteration is done: read `until`, then record the next iteration, or the end. */
  private checkLoop(step: LoopStep, snap: WorkflowSnapshot): void {
    const key = `check:${step.id}`;
    if (this.starting.has(key)) return;
    this.starting.add(key);
    const iteration = stepMapGet(snap.context.iterations ?? emptyStepMap<number>(), step.id) ?? 1;
    const output = stepMapGet(snap.context.outputs, step.id) ?? null;
    const next = async (): Promise<WorkflowEvent> => {
      if (step.until !== undefined) {
        const ids = [...rootsReadBy(step.until)].filter((r) => r.startsWith('steps.')).map((r) => r.slice('steps.'.length));
        const base = this.scope(snap, step, ids);
        const scope = scopeHoldsRefs(base) ? await resolveScopeRefs(base, step, this.deps.payloads, step.until) : base;
        if (await evaluateCondition(step.until, { ...scope, iteration }, `${this.pathOf(step)}.until`)) {
          return { type: 'StepCompleted', stepId: step.id, attempt: 1, output, iterations: iteration };
        }
      }
      if (iteration < step.maxIterations) return { type: 'StepStarted', stepId: step.id, attempt: 1, iteration: iteration + 1 };
      // Without `until` a loop is counted: maxIterations is its number of iterations, not a failure.
      if (step.onMaxIterations === 'continue' || step.until === undefined) return { type: 'StepCompleted', stepId: step.id, attempt: 1, output, iterations: iteration };
      return {
        type: 'StepFailed', stepId: step.id, attempt: 1,
        error: { code: 'MAX_ITERATIONS', message: `loop '${step.id}' ran ${iteration} iterations without its 'until' becoming true`, retryable: false, details: { maxIterations: step.maxIterations } },
      };
    };
    void next()
      .catch((err): WorkflowEvent => ({ type: 'StepFailed', stepId: step.id, attempt: 1, error: toErrorRecord(err) }))
      .then((event) => {
        this.starting.delete(key);
        if (!this.stopped) this.enqueueOnce(step.id, event);
      });
  }

  /** A `workflow` step about to start: find its registered definition, then record the child it starts. */
  private startWorkflowChild(step: WorkflowStep, snap: WorkflowSnapshot, attempt: number): void {
    const key = `child:${step.id}`;
    if (this.starting.has(key)) return;
    this.starting.add(key);
    const decide = async (): Promise<WorkflowEvent> => {
      if (!this.deps.children) throw new StepError('NO_EXECUTOR', `step '${step.id}' starts a child execution, and this engine runs none (it has no workflow registry)`);
      const definition = await this.deps.children.resolve(this.executionId, step.workflowId, step.version, true);
      // Resumed from a step of its child: that child again.
      const again = snap.context.itemsAgain?.stepId === step.id ? snap.context.itemsAgain.child?.child : undefined;
      return { type: 'StepStarted', stepId: step.id, attempt, child: again ?? childIdFor(this.executionId, step.id, this.lastSeq), ...(definition.version !== undefined ? { version: definition.version } : {}) };
    };
    void decide()
      .catch((err): WorkflowEvent => ({ type: 'StepFailed', stepId: step.id, attempt, error: toErrorRecord(err) }))
      .then((event) => {
        this.starting.delete(key);
        if (!this.stopped) this.enqueueOnce(step.id, event);
      });
  }

  /** A `workflow` step waits: make sure its recorded child exists (after a crash it may not yet). */
  private ensureWorkflowChild(step: WorkflowStep, snap: WorkflowSnapshot): void {
    const ref = childOf(snap.context, step.id);
    if (!ref || this.ensured.has(ref.id)) return;
    this.ensured.add(ref.id);
    const attempt = stepMapGet(snap.context.attempts, step.id) ?? 1;
    const children = this.deps.children;
    this.ensuring++;
    void (async () => {
      if (!children) throw new StepError('NO_EXECUTOR', `step '${step.id}' starts a child execution, and this engine runs none`);
      const definition = await children.resolve(this.executionId, step.workflowId, ref.version ?? step.version, false);
      const input = step.input === undefined ? {} : await resolveValue(step.input, await this.scopeFor(step, snap), `${this.pathOf(step)}.input`);
      await children.ensure({ childId: ref.id, parent: { executionId: this.executionId, stepId: step.id, attempt }, definition, input, ...childBudget(snap.context.budget, snap.context.usage), ...(ref.again ? { resume: ref.again } : {}) });
      await this.cancelIfDropped(ref.id);
    })().catch((err) => {
      if (!this.stopped) this.enqueueOnce(`child-failed:${ref.id}`, { type: 'StepFailed', stepId: step.id, attempt, child: ref.id, error: toErrorRecord(err) });
    }).finally(() => this.childEnsured());
  }

  /** A map under way: record the start of the items it may start now, and make sure each running item's child exists. */
  private runItems(step: MapStep, snap: WorkflowSnapshot, launching: boolean): void {
    const p = progressOf(snap.context, step.id)!;
    const attempt = stepMapGet(snap.context.attempts, step.id) ?? 1;
    if (launching && runsInline(step)) this.runInline(step, snap, p, attempt);
    else if (launching) {
      // Every item a free slot allows, in one record.
      const indices = nextItems(p, step.maxConcurrency - runningCount(p));
      const { budget, usage } = snap.context;
      const given = budget && itemBudgets(budget, usage, p, step, indices.length);
      // An item resumed from a step inside the block runs its own child again.
      const childFor = (index: number) => p.again?.children[String(index)]?.child ?? childIdFor(this.executionId, step.id, this.lastSeq, index);
      const launch = indices.map((index, i) => ({ index, child: childFor(index), ...(given ? { maxTokens: given[i] } : {}) }));
      if (launch.length > 0) this.enqueueOnce(`launch:${step.id}`, { type: 'StepStarted', stepId: step.id, attempt, launch });
    }
    for (const [i, childId] of Object.entries(p.running)) if (!this.ensured.has(childId)) this.ensureItem(step, snap, p, Number(i), childId, attempt);
  }

  /** A pure block's next items (as many as maxConcurrency allows), evaluated here and recorded with their outputs; one batch at a time. */
  private runInline(step: MapStep, snap: WorkflowSnapshot, p: MapProgress, attempt: number): void {
    const key = `launch:${step.id}`;
    if (this.starting.has(key)) return;
    this.starting.add(key);
    const indexes = nextItems(p, step.maxConcurrency - runningCount(p));
    void (async () => {
      const [items, around] = await Promise.all([this.itemsFor(step, p), this.inlineScope(step, snap)]);
      const record = (value: unknown, inner: Step) => this.deps.payloads.prepare(this.executionId, value, { what: `the output of step '${inner.id}'`, tooLargeCode: 'OUTPUT_TOO_LARGE', tooDeepCode: 'OUTPUT_TOO_DEEP' });
      const entries = await Promise.all(indexes.map((i) => runInlineItem(step, around, items[i] ?? null, i, (s) => this.pathOf(s), record)));
      for (const event of inlineRecords(step.id, attempt, entries)) {
        // Past the failures tolerated (or once the execution ended) the map takes no more items: the rest is not recorded.
        if (this.stopped || !this.snapshot.can(event)) return;
        await this.commit(event);
      }
    })()
      .catch((err) => {
        // A record refused (another came first: the execution ended) is no failure of the map's.
        if (!this.stopped && !(err instanceof InvalidExecutionStateError)) this.enqueueOnce(step.id, { type: 'StepFailed', stepId: step.id, attempt, error: toErrorRecord(err) });
      })
      .finally(() => {
        this.starting.delete(key);
        this.react(); // the records' own reactions found the batch still running
      });
  }

  /** What a map's inline items read besides their item and index: the input, the outer steps' outputs the block names, a loop's iteration (refs fetched). */
  private async inlineScope(step: MapStep, snap: WorkflowSnapshot): Promise<ResolveScope> {
    let scope = this.scope(snap, step, outerRefs(step));
    if (scopeHoldsRefs(scope)) for (const inner of step.steps) scope = await resolveScopeRefs(scope, inner, this.deps.payloads);
    return scope;
  }

  private ensureItem(step: MapStep, snap: WorkflowSnapshot, p: MapProgress, index: number, childId: string, attempt: number): void {
    this.ensured.add(childId);
    const children = this.deps.children;
    this.ensuring++;
    void (async () => {
      if (!children) throw new StepError('NO_EXECUTOR', `map '${step.id}' runs its items as child executions, and this engine runs none`);
      const items = await this.itemsFor(step, p);
      const around = this.scope(snap, step, outerRefs(step)) as TemplateScope & { iteration?: number };
      const outer = { item: items[index] ?? null, index, steps: around.steps, ...(around.iteration !== undefined ? { iteration: around.iteration } : {}) };
      const definition = blockDefinition(snap.context.definition, step);
      // The parent's input only when the block may read it: each item's start records it.
      const input = blockReadsInput(step) ? snap.context.input : {};
      const held = p.held?.[String(index)];
      const budget = held !== undefined ? { budget: itemBudget(held) } : childBudget(snap.context.budget, snap.context.usage);
      const again = p.again?.children[String(index)];
      const resume = again?.child === childId ? { resume: { fromStep: p.again!.fromStep, after: again.after } } : {};
      await children.ensure({ childId, parent: { executionId: this.executionId, stepId: step.id, attempt, index }, definition, input, outer, ...budget, ...resume });
      await this.cancelIfDropped(childId);
    })().catch((err) => {
      const error = toErrorRecord(err);
      if (!this.stopped) this.enqueueOnce(`child-failed:${childId}`, { type: 'StepFailed', stepId: step.id, attempt, error, failures: [{ index, child: childId, error }] });
    }).finally(() => this.childEnsured());
  }

  /** A child has been made sure of: once none is left, the execution may be let go. */
  private childEnsured(): void {
    if (--this.ensuring === 0) this.settleIdleWaiters();
  }

  /** A child started after its parent ended (cancelled or failed meanwhile) is cancelled too: none runs on alone. */
  private async cancelIfDropped(childId: string): Promise<void> {
    // Only an end drops running children (a map stops waiting only once none runs); a child that already reported is not asked.
    if (isTerminal(this.status)) await this.deps.children!.cancel(childId, `its parent '${this.executionId}' has ended`);
  }

  /** A map's items as recorded: the array, or fetched once when recorded by reference. */
  private itemsFor(step: MapStep, p: MapProgress): Promise<unknown[]> {
    if (Array.isArray(p.items)) return Promise.resolve(p.items);
    const key = `${step.id}\n${JSON.stringify(p.items)}`;
    let items = this.itemsOf.get(key);
    if (!items) {
      items = this.deps.payloads.resolve(p.items) as Promise<unknown[]>;
      this.itemsOf.set(key, items);
      items.catch(() => this.itemsOf.delete(key));
    }
    return items;
  }

  /** All items have a result: record the map's output, by reference when large. */
  private closeMap(step: MapStep, snap: WorkflowSnapshot): void {
    const key = `close:${step.id}`;
    if (this.starting.has(key)) return;
    this.starting.add(key);
    const attempt = stepMapGet(snap.context.attempts, step.id) ?? 1;
    void this.deps.payloads.prepare(this.executionId, stepMapGet(snap.context.outputs, step.id) ?? [], { what: `the output of map '${step.id}'`, tooLargeCode: 'OUTPUT_TOO_LARGE', tooDeepCode: 'OUTPUT_TOO_DEEP' })
      .then((output): WorkflowEvent => ({ type: 'StepCompleted', stepId: step.id, attempt, output }), (err): WorkflowEvent => ({ type: 'StepFailed', stepId: step.id, attempt, error: toErrorRecord(err) }))
      .then((event) => {
        this.starting.delete(key);
        // Its own key: the map's start may still hold the step's (an empty map closes as it starts).
        if (!this.stopped) this.enqueueOnce(`closed:${step.id}`, event);
      });
  }

  /** The scope with the values the step's templates read fetched, where they are refs. */
  private async scopeFor(step: Step, snap: WorkflowSnapshot): Promise<TemplateScope> {
    const scope = this.scope(snap, step);
    return scopeHoldsRefs(scope) ? resolveScopeRefs(scope, step, this.deps.payloads) : scope;
  }

  /** A pending step: skip it (`when` is false), refuse it (budget), or start it. */
  private begin(step: Step, snap: WorkflowSnapshot): void {
    if (step.when === undefined) return this.decide(step, snap, true);
    // An expression, or a value kept by reference, is read asynchronously (once, however often this is called meanwhile).
    if (isExpression(step.when) || scopeHoldsRefs(this.scope(snap, step))) {
      const key = `when:${step.id}`;
      if (this.starting.has(key)) return;
      this.starting.add(key);
      void this.scopeFor(step, snap)
        .then((scope) => evaluateCondition(step.when!, scope, `${this.pathOf(step)}.when`))
        .then(
          (holds) => {
            this.starting.delete(key);
            if (!this.stopped) this.decide(step, snap, holds);
          },
          (err) => {
            this.starting.delete(key);
            const attempt = (stepMapGet(snap.context.attempts, step.id) ?? 0) + 1;
            if (!this.stopped) this.enqueueOnce(step.id, { type: 'StepFailed', stepId: step.id, attempt, error: toErrorRecord(err) });
          },
        );
      return;
    }
    this.decide(step, snap, evaluateWhen(step.when, this.scope(snap, step)));
  }

  /** Where a step stands in the definition (`steps[2].cases[0].steps[1]`), for errors that name a path. */
  private pathOf(step: Step): string {
    return stepIndex(this.snapshot.context.definition).get(step.id)?.path ?? step.id;
  }

  private decide(step: Step, snap: WorkflowSnapshot, when: boolean): void {
    const attempt = (stepMapGet(snap.context.attempts, step.id) ?? 0) + 1;
    if (!when) {
      return this.enqueueOnce(step.id, { type: 'StepCompleted', stepId: step.id, output: null, skipped: true });
    }
    const { budget, usage } = snap.context;
    if (step.type === 'llm' && budget && usage.totalTokens >= budget.maxTokens) {
      const error: ErrorInfo = {
        code: 'BUDGET_EXCEEDED',
        message: `token budget of ${budget.maxTokens} is spent (${usage.totalTokens} used); resume with a higher budget to continue`,
        retryable: false,
        details: { maxTokens: budget.maxTokens, usedTokens: usage.totalTokens },
      };
      return this.enqueueOnce(step.id, { type: 'StepFailed', stepId: step.id, attempt, error });
    }
    this.start(step, snap, attempt);
  }

  /** Record a step's start, with its timer (a sleep's wake time, a signal's deadline) when it has one. */
  private start(step: Step, snap: WorkflowSnapshot, attempt: number, fields?: Pick<StepStarted, 'keys' | 'queuedMs' | 'after'>): void {
    // Admitted (by its concurrency and rate keys) first: an admission always names the keys.
    if (fields?.keys === undefined && this.limits && isLimited(step)) return this.limits.admitStep(step, snap, attempt);
    if (step.type === 'workflow') return this.startWorkflowChild(step, snap, attempt);
    // A waitForEvent's `after` (a template or an expression) is resolved first, once, then recorded with its start.
    if (step.type === 'waitForEvent' && step.after !== undefined && fields?.after === undefined) return this.resolveAfter(step, snap, attempt, fields);
    let timer;
    try {
      // Only sleeps and signal steps have timers: other steps start without building a template scope.
      if (step.type === 'sleep' || step.type === 'signal' || step.type === 'waitForEvent') timer = timerFields(step, snap, this.scope(snap, step), this.now().getTime());
      if (step.type === 'waitForEvent' && this.deps.waits) this.waitScopes.set(step.id, waitScopeOf(step, snap, { id: this.executionId, workflowId: this.workflowId }));
    } catch (err) {
      return this.enqueueOnce(step.id, { type: 'StepFailed', stepId: step.id, attempt, error: toErrorRecord(err) });
    }
    this.enqueueOnce(step.id, { type: 'StepStarted', stepId: step.id, attempt, ...timer, ...fields });
  }

  private resolveAfter(step: Extract<Step, { type: 'waitForEvent' }>, snap: WorkflowSnapshot, attempt: number, fields?: Pick<StepStarted, 'keys' | 'queuedMs'>): void {
    const key = `after:${step.id}`;
    if (this.starting.has(key)) return;
    this.starting.add(key);
    void this.scopeFor(step, snap)
      .then(async (scope) => waitAfterTime(step, await resolveValue(step.after, scope, `${this.pathOf(step)}.after`)))
      .then(
        (after) => {
          this.starting.delete(key);
          if (!this.stopped) this.start(step, snap, attempt, { ...fields, after });
        },
        (err) => {
          this.starting.delete(key);
          if (!this.stopped) this.enqueueOnce(step.id, { type: 'StepFailed', stepId: step.id, attempt, error: toErrorRecord(err) });
        },
      );
  }

  private execute(step: Step, snap: WorkflowSnapshot): void {
    const controller = (this.stepsController ??= stepsController());
    this.inflight.add(step.id);
    const attempt = stepMapGet(snap.context.attempts, step.id) ?? 1;
    const signal = step.timeoutMs ? AbortSignal.any([controller.signal, AbortSignal.timeout(step.timeoutMs)]) : controller.signal;

    const work = async (): Promise<WorkflowEvent> => {
      try {
        const secrets = await this.secrets.forStep(step);
        const resolved = await resolveStep(step, { ...(await this.scopeFor(step, snap)), ...(secrets ? { secrets } : {}) }, this.pathOf(step));
        const executor = this.deps.executors[step.type] as ((run: unknown) => Promise<{ output: unknown; usage?: never; latencyMs?: number }>) | undefined;
        if (!executor) throw new StepError('NO_EXECUTOR', `no executor for step type '${step.type}' in this process`);
        const result = await untilAborted(
          executor({ executionId: this.executionId, workflowId: this.workflowId, step: resolved, attempt, signal, usage: snap.context.usage, budget: snap.context.budget, maxOutputBytes: this.deps.payloads.limits.maxBytes }),
          signal,
        );
        // Secrets are redacted first, so neither the record nor a stored large value holds one.
        // Over the inline threshold: stored, and the record carries a ref. Too large or too deep: a failure no retry mends.
        const output = await this.deps.payloads.prepare(this.executionId, this.secrets.redactOutput(result.output ?? null), { what: `the output of step '${step.id}'`, tooLargeCode: 'OUTPUT_TOO_LARGE', tooDeepCode: 'OUTPUT_TOO_DEEP' });
        return { type: 'StepCompleted', stepId: step.id, attempt, output, ...(result.usage ? { usage: result.usage } : {}), ...(result.latencyMs !== undefined ? { latencyMs: result.latencyMs } : {}) };
      } catch (err) {
        const error: ErrorInfo = signal.aborted && !controller.signal.aborted
          ? { code: 'TIMEOUT', message: `step '${step.id}' timed out after ${step.timeoutMs} ms`, retryable: true }
          : this.secrets.redactError(toErrorRecord(err));
        const retryInMs = canRetry(step.retry, attempt, error) ? retryDelayMs(step.retry, attempt) : undefined;
        const usage = spentUsage(error);
        return { type: 'StepFailed', stepId: step.id, attempt, error, ...(retryInMs !== undefined ? { retryInMs } : {}), ...(usage ? { usage } : {}) };
      }
    };
    void work().then((event) => {
      this.inflight.delete(step.id);
      if (controller.signal.aborted || this.stopped) return; // cancelled, stopped, or a sibling failed
      this.reporting.add(step.id);
      return this.commit(event).finally(() => {
        this.reporting.delete(step.id);
        if (this.reporting.size === 0) this.settleIdleWaiters();
      });
    }).catch(() => undefined);
  }

  private scheduleRetry(step: Step, snap: WorkflowSnapshot): void {
    const attempt = stepMapGet(snap.context.attempts, step.id) ?? 1;
    const retry = () => {
      this.timers.delete(step.id);
      if (!this.stopped) this.start(step, this.snapshot, attempt + 1);
    };
    const delay = retryDelayMs(step.retry, attempt);
    // No delay: next turn of the event loop (a 0 ms timer still waits about 1 ms).
    if (delay === 0) {
      const immediate = setImmediate(retry);
      this.timers.set(step.id, () => clearImmediate(immediate));
    } else {
      const timer = setTimeout(retry, delay);
      this.timers.set(step.id, () => clearTimeout(timer));
    }
  }

  /**
   * While this runner hosts a waiting step, it fires the step's timer itself at the recorded
   * time (other workers fire it through the timer store when nobody hosts the execution).
   */
  private scheduleTimer(step: Step, snap: WorkflowSnapshot): void {
    const attempt = stepMapGet(snap.context.attempts, step.id) ?? 1;
    const recorded = recordedTimer(step, snap);
    // Recorded before timers were durable: a signal's timeout counts from now, as it did then.
    const at = recorded?.at ?? (step.type === 'signal' && step.timeoutMs ? this.now().getTime() + step.timeoutMs : undefined);
    if (at === undefined) return;
    if (recorded && this.deps.timers) this.armed.set(step.id, attempt);
    const cancel = setLongTimeout(() => {
      this.timers.delete(step.id);
      if (!this.stopped) this.fireTimer(step.id, attempt).catch(() => undefined); // refused: the step moved on
    }, at - this.now().getTime());
    this.timers.set(step.id, cancel);
  }

  private abortSteps(why: string): void {
    if (this.inflight.size > 0) this.stepsController?.abort(new Stopped(why));
    this.stepsController = undefined;
    this.inflight.clear();
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
    clearTimeout(this.idleRecheck);
  }

  private finish(status: ExecutionStatus): void {
    this.stopped = true;
    this.limits?.stop();
    this.abortSteps('execution ended');
    this.actor.stop();
    this.resolveDone({ status, snapshot: this.actor.getSnapshot() });
  }
}

function stepsController(): AbortController {
  const c = new AbortController();
  setMaxListeners(0, c.signal); // one listener or more per parallel step: no leak warning past 10
  return c;
}

/** An executor that ignores its signal must not hold the execution up. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined); // its outcome no longer matters, and its failure must not go unhandled
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * What to record instead of an event NATS refused as too large: the step (or
 * the execution) fails with RECORD_TOO_LARGE, not retryable. Undefined when
 * there is nothing smaller to say (the refusal then stops the runner).
 */
function smallerEvent(event: WorkflowEvent, err: MessageTooLargeError, snap: WorkflowSnapshot): WorkflowEvent | undefined {
  const error = (what: string): ErrorInfo => ({ code: 'RECORD_TOO_LARGE', message: `${what} could not be recorded: ${err.message}`, retryable: false, ...(err.details ? { details: err.details } : {}) });
  switch (event.type) {
    case 'StepCompleted':
    case 'StepFailed':
      if (event.type === 'StepFailed' && event.error.code === 'RECORD_TOO_LARGE') return undefined;
      return { type: 'StepFailed', stepId: event.stepId, attempt: event.attempt ?? stepMapGet(snap.context.attempts, event.stepId) ?? 1, error: error(`the ${event.type === 'StepCompleted' ? 'output' : 'error'} of step '${event.stepId}'`) };
    case 'ExecutionCompleted':
      return { type: 'ExecutionFailed', error: error('the output of the execution') };
    case 'ExecutionFailed':
      return event.error.code === 'RECORD_TOO_LARGE' ? undefined : { type: 'ExecutionFailed', ...(event.stepId ? { stepId: event.stepId } : {}), error: error(`the error ${event.error.code} of the execution`) };
    case 'ExecutionCancelled':
      // A cancel must take effect whatever its reason (a command from another system may carry any).
      return event.reason && event.reason.length > 1000 ? { type: 'ExecutionCancelled', reason: `${event.reason.slice(0, 1000)}… (cut: the whole reason was too large to record)` } : undefined;
    default:
      return undefined;
  }
}

function describeRefusal(event: WorkflowEvent, snap: WorkflowSnapshot): string {
  const status = statusOf(snap);
  if (event.type === 'SignalReceived') {
    return isTerminal(status)
      ? `execution is ${status}: it takes no signals`
      : `no step of this execution awaits signal '${event.name}' (or it was already delivered)`;
  }
  return `event ${event.type}${'stepId' in event ? ` for step '${event.stepId}'` : ''} does not apply in state ${JSON.stringify(snap.value)} (${status})`;
}

/**
 * The values a wait's match expression may read besides the event: the input and the outputs of
 * the steps it names (`steps.<id>`); secrets are never kept with a wait.
 */
const MAX_WAIT_SCOPE_BYTES = 64 * 1024;
function waitScopeOf(step: Extract<Step, { type: 'waitForEvent' }>, snap: WorkflowSnapshot, execution: { id: string; workflowId: string }): Record<string, unknown> {
  const named = new Set([...(step.match ?? '').matchAll(/steps\.([A-Za-z0-9_-]+)/g)].map((m) => m[1]));
  const steps: Record<string, { output: unknown }> = {};
  for (const id of named) if (stepMapHas(snap.context.outputs, id)) steps[id] = { output: stepMapGet(snap.context.outputs, id) };
  const kept = { input: snap.context.input, steps, execution };
  const bytes = Buffer.byteLength(JSON.stringify(kept));
  if (bytes > MAX_WAIT_SCOPE_BYTES) throw new StepError('WAIT_SCOPE_TOO_LARGE', `the input and step outputs the match of step '${step.id}' reads are ${bytes} bytes, over ${MAX_WAIT_SCOPE_BYTES}: match on values from a smaller step`);
  return kept;
}

/** The tokens a failed LLM step reported spending (its error's `details.usage`), if any. */
function spentUsage(error: ErrorInfo): Usage | undefined {
  const u = (error.details as { usage?: Partial<Usage> } | undefined)?.usage;
  if (!u || typeof u.totalTokens !== 'number' || typeof u.promptTokens !== 'number' || typeof u.completionTokens !== 'number') return undefined;
  return { promptTokens: u.promptTokens, completionTokens: u.completionTokens, totalTokens: u.totalTokens };
}
