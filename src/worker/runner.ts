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
import { createActor, type Actor } from 'xstate';
import {
  allStepsDone,
  isCheckpointEvent,
  inspectSnapshot,
  canRetry,
  compileCached,
  finalOutput,
  isTerminal,
  retryDelayMs,
  statusOf,
  type ErrorInfo,
  type ExecutionStatus,
  type WorkflowEvent,
  type WorkflowMachine,
  type WorkflowSnapshot,
} from '../../machines/index.js';
import type { Step } from '../../machines/definition.js';
import { evaluateWhen, resolveTemplates, type TemplateScope } from '../definition/templates.js';
import { InvalidExecutionStateError, StepError, toErrorRecord } from '../errors.js';
import type { EventLog, LogPosition } from '../log/eventLog.js';
import type { StoredRecord } from '../log/records.js';
import type { StepExecutors } from '../steps/types.js';
import { SNAPSHOT_EVERY, type SnapshotStore } from '../log/snapshots.js';
import type { Principal } from '../../machines/events.js';

export interface RunnerDeps {
  log: EventLog;
  executors: StepExecutors;
  now?: () => Date;
  /** After every appended record (printing, indexing, metrics). */
  onRecord?: (stored: StoredRecord, snapshot: WorkflowSnapshot) => void;
  /** Snapshots every SNAPSHOT_EVERY records, at a checkpoint, so long histories resume fast. */
  snapshots?: SnapshotStore;
  onError?: (err: unknown, context: string) => void;
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
  private sinceSnapshot = 0;
  /** Identifies this runner's appends (message ids), so another writer never looks like a retry of ours. */
  private readonly writer = randomUUID();
  private resolveDone!: (o: RunnerOutcome) => void;
  private rejectDone!: (e: unknown) => void;
  /** Settles when the execution ends, the runner is stopped, or the log is lost to another writer. */
  readonly done: Promise<RunnerOutcome>;
  private idleWaiters: ((o: RunnerOutcome) => void)[] = [];
  readonly workflowId: string;

  constructor(
    private readonly deps: RunnerDeps,
    readonly executionId: string,
    snapshot: WorkflowSnapshot,
    private position: LogPosition | null,
  ) {
    this.workflowId = snapshot.context.definition.id;
    this.actor = actorFrom(snapshot);
    this.done = new Promise((res, rej) => { this.resolveDone = res; this.rejectDone = rej; });
    this.done.catch(() => undefined); // observed by whoever awaits it
  }

  /** Settles at the next point where nothing runs: the end (as `done`), or WAITING for a signal. */
  settled(): Promise<RunnerOutcome> {
    if (this.stopped || this.status === 'WAITING') return this.status === 'WAITING' && !this.stopped ? Promise.resolve(this.outcome()) : this.done;
    return Promise.race([this.done, new Promise<RunnerOutcome>((res) => this.idleWaiters.push(res))]);
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
    const run = this.queue.then(() => this.append(event, next));
    this.queue = run.catch(() => undefined);
    return run;
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
    const waiting = this.snapshot.context.definition.steps.find((s) => s.type === 'signal' && (s.name ?? s.id) === name);
    const event: WorkflowEvent = { type: 'SignalReceived', name, payload, ...(waiting ? { stepId: waiting.id } : {}), ...(principal ? { principal } : {}) };
    await this.commit(event);
  }

  /** Stop hosting without writing anything (shutdown, passivation). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.abortSteps('stopped');
    this.resolveDone({ status: this.status, snapshot: this.snapshot });
  }

  private async append(event: WorkflowEvent, next?: WorkflowSnapshot): Promise<void> {
    if (this.stopped) throw new InvalidExecutionStateError(`execution '${this.executionId}' is no longer hosted here`);
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
    const body = { executionId: this.executionId, workflowId: this.workflowId, at: (this.deps.now?.() ?? new Date()).toISOString(), state: after.value, ...event };
    let stored: StoredRecord;
    try {
      stored = await this.deps.log.append(body as never, this.position, this.writer);
    } catch (err) {
      // Lost the log to another writer (or it is unreachable): what is recorded stands, we stop.
      this.stopped = true;
      this.abortSteps('stopped');
      this.rejectDone(err);
      throw err;
    }
    this.position = { seq: stored.seq, hash: stored.record.hash };
    this.deps.onRecord?.(stored, after);
    if (this.deps.snapshots && ++this.sinceSnapshot >= SNAPSHOT_EVERY && isCheckpointEvent(event) && !isTerminal(statusOf(after))) {
      this.sinceSnapshot = 0;
      this.deps.snapshots.save(stored, after).catch((err) => this.deps.onError?.(err, 'snapshot save'));
    }
    this.react();
  }

  /** Look at the current snapshot and do what it calls for. */
  private react(): void {
    if (this.stopped) return;
    const snap = this.actor.getSnapshot();
    const { status, phases, stage } = inspectSnapshot(snap);
    if (isTerminal(status)) return this.finish(status);

    const failed = Object.keys(phases).find((id) => phases[id] === 'failed');
    if (failed) {
      this.abortSteps('a parallel step failed');
      return this.enqueueOnce(`fail`, { type: 'ExecutionFailed', stepId: failed, error: snap.context.errors[failed] });
    }
    if (!stage && allStepsDone(snap)) return this.enqueueOnce('complete', { type: 'ExecutionCompleted', output: finalOutput(snap) });

    for (const step of stage?.steps ?? []) {
      const phase = phases[step.id];
      if (phase === 'pending') this.begin(step, snap);
      else if (phase === 'running' && !this.inflight.has(step.id) && !this.reporting.has(step.id)) this.execute(step, snap);
      else if (phase === 'backoff' && !this.timers.has(step.id)) this.scheduleRetry(step, snap);
      else if (phase === 'waiting' && step.timeoutMs && !this.timers.has(step.id)) this.scheduleSignalTimeout(step, snap);
    }
    if (status === 'WAITING') for (const w of this.idleWaiters.splice(0)) w({ status, snapshot: snap });
  }

  private enqueueOnce(key: string, event: WorkflowEvent): void {
    if (this.starting.has(key)) return;
    this.starting.add(key);
    this.commit(event).catch(() => undefined).finally(() => this.starting.delete(key));
  }

  private scope(snap: WorkflowSnapshot): TemplateScope {
    const { input, outputs } = snap.context;
    const steps: TemplateScope['steps'] = {};
    for (const [id, output] of Object.entries(outputs)) steps[id] = { output };
    return { input, steps, execution: { id: this.executionId, workflowId: this.workflowId } };
  }

  /** A pending step: skip it (`when` is false), refuse it (budget), or start it. */
  private begin(step: Step, snap: WorkflowSnapshot): void {
    const attempt = (snap.context.attempts[step.id] ?? 0) + 1;
    if (step.when !== undefined && !evaluateWhen(step.when, this.scope(snap))) {
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
    this.enqueueOnce(step.id, { type: 'StepStarted', stepId: step.id, attempt });
  }

  private execute(step: Step, snap: WorkflowSnapshot): void {
    const controller = (this.stepsController ??= stepsController());
    this.inflight.add(step.id);
    const attempt = snap.context.attempts[step.id] ?? 1;
    const signal = step.timeoutMs ? AbortSignal.any([controller.signal, AbortSignal.timeout(step.timeoutMs)]) : controller.signal;

    const work = async (): Promise<WorkflowEvent> => {
      try {
        const resolved = resolveStep(step, this.scope(snap));
        const executor = this.deps.executors[step.type] as ((run: unknown) => Promise<{ output: unknown; usage?: never; latencyMs?: number }>) | undefined;
        if (!executor) throw new StepError('NO_EXECUTOR', `no executor for step type '${step.type}' in this process`);
        const result = await untilAborted(
          executor({ executionId: this.executionId, workflowId: this.workflowId, step: resolved, attempt, signal, usage: snap.context.usage, budget: snap.context.budget }),
          signal,
        );
        return { type: 'StepCompleted', stepId: step.id, attempt, output: result.output ?? null, ...(result.usage ? { usage: result.usage } : {}), ...(result.latencyMs !== undefined ? { latencyMs: result.latencyMs } : {}) };
      } catch (err) {
        const error: ErrorInfo = signal.aborted && !controller.signal.aborted
          ? { code: 'TIMEOUT', message: `step '${step.id}' timed out after ${step.timeoutMs} ms`, retryable: true }
          : toErrorRecord(err);
        const retryInMs = canRetry(step.retry, attempt, error) ? retryDelayMs(step.retry, attempt) : undefined;
        return { type: 'StepFailed', stepId: step.id, attempt, error, ...(retryInMs !== undefined ? { retryInMs } : {}) };
      }
    };
    void work().then((event) => {
      this.inflight.delete(step.id);
      if (controller.signal.aborted || this.stopped) return; // cancelled, stopped, or a sibling failed
      this.reporting.add(step.id);
      return this.commit(event).finally(() => this.reporting.delete(step.id));
    }).catch(() => undefined);
  }

  private scheduleRetry(step: Step, snap: WorkflowSnapshot): void {
    const attempt = snap.context.attempts[step.id] ?? 1;
    const retry = () => {
      this.timers.delete(step.id);
      if (!this.stopped) this.enqueueOnce(step.id, { type: 'StepStarted', stepId: step.id, attempt: attempt + 1 });
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

  private scheduleSignalTimeout(step: Step, snap: WorkflowSnapshot): void {
    const attempt = snap.context.attempts[step.id] ?? 1;
    const timer = setTimeout(() => {
      this.timers.delete(step.id);
      if (this.stopped) return;
      const error: ErrorInfo = { code: 'TIMEOUT', message: `no signal for step '${step.id}' within ${step.timeoutMs} ms`, retryable: true };
      this.commit({ type: 'StepFailed', stepId: step.id, attempt, error }).catch(() => undefined);
    }, step.timeoutMs);
    this.timers.set(step.id, () => clearTimeout(timer));
  }

  private abortSteps(why: string): void {
    if (this.inflight.size > 0) this.stepsController?.abort(new Stopped(why));
    this.stepsController = undefined;
    this.inflight.clear();
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
  }

  private finish(status: ExecutionStatus): void {
    this.stopped = true;
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

function actorFrom(snapshot: WorkflowSnapshot): Actor<WorkflowMachine> {
  const machine = compileCached(snapshot.context.definition);
  const actor = createActor(machine, {
    snapshot: machine.getPersistedSnapshot(snapshot),
    input: { executionId: snapshot.context.executionId, definition: snapshot.context.definition },
  });
  actor.start();
  return actor;
}

/** Resolve the templated fields of a step against the outputs so far. */
function resolveStep(step: Step, scope: TemplateScope): Step {
  switch (step.type) {
    case 'transform': return { ...step, value: resolveTemplates(step.value, scope) };
    case 'http': return { ...step, request: resolveTemplates(step.request, scope) as typeof step.request };
    case 'llm': return { ...step, prompt: resolveTemplates(step.prompt, scope) as string, model: resolveTemplates(step.model, scope) as string, ...(step.system ? { system: resolveTemplates(step.system, scope) as string } : {}) };
    case 'fail': return { ...step, message: String(resolveTemplates(step.message, scope)) };
    default: return step;
  }
}

/** An executor that ignores its signal must not hold the execution up. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
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
