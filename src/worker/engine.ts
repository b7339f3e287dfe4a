/**
 * The engine: starts, resumes, cancels and signals executions, hosting each as
 * an ExecutionRunner. Every hosted execution answers on its control subject,
 * so any process can tell whether a live owner exists and reach it; an
 * execution with no live owner is taken over from its log.
 */
import { randomUUID } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { errors as natsErrors } from '@nats-io/transport-node';
import { activeStage, initialSnapshot, isTerminal, resumeSnapshot, statusOf, stepPhases, type WorkflowSnapshot } from '../../machines/index.js';
import type { Budget, Definition } from '../definition/schema.js';
import { validateDefinition } from '../definition/validate.js';
import { ConcurrencyError, ExecutionOwnedError, InvalidExecutionStateError, InvalidInputError, NoStepsError, SmartSpecError } from '../errors.js';
import { EventLog } from '../log/eventLog.js';
import type { StoredRecord } from '../log/records.js';
import { findCheckpoint, loadExecution, type LoadedExecution } from '../log/views.js';
import { controlSubject, EXECUTION_ID } from '../nats/names.js';
import { defaultExecutors } from '../steps/index.js';
import type { StepExecutors } from '../steps/types.js';
import { ExecutionRunner } from './runner.js';

export interface EngineOptions {
  nc: NatsConnection;
  log?: EventLog;
  executors?: StepExecutors;
  /** Names this process in ownership answers (e.g. `cli:1234@host`). */
  owner?: string;
  onRecord?: (stored: StoredRecord, snapshot: WorkflowSnapshot) => void;
}

export interface StartRequest {
  definition: Definition;
  input?: unknown;
  executionId?: string;
  budget?: Budget;
}

export interface ResumeRequest {
  checkpointId?: string;
  fromStep?: string;
  /** Replacement steps: a definition document (validated here). */
  steps?: unknown;
  budget?: Budget;
}

type ControlRequest = { op: 'ping' } | { op: 'cancel'; reason?: string } | { op: 'signal'; name: string; payload: unknown };
type ControlReply = { ok: true; owner: string } | { ok: false; owner: string; error: { code: string; message: string } };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Engine {
  readonly runners = new Map<string, ExecutionRunner>();
  private readonly subs = new Map<string, Subscription>();
  readonly owner: string;

  private constructor(
    readonly nc: NatsConnection,
    readonly log: EventLog,
    private readonly executors: StepExecutors,
    owner: string,
    private readonly onRecord?: EngineOptions['onRecord'],
  ) {
    this.owner = owner;
  }

  static async create(options: EngineOptions): Promise<Engine> {
    const log = options.log ?? (await EventLog.open(options.nc));
    return new Engine(options.nc, log, options.executors ?? defaultExecutors(), options.owner ?? `pid:${process.pid}`, options.onRecord);
  }

  /** Start a new execution: its first record is ExecutionStarted. */
  async start(req: StartRequest): Promise<ExecutionRunner> {
    const executionId = req.executionId ?? randomUUID();
    if (!EXECUTION_ID.test(executionId)) throw new InvalidInputError(`executionId '${executionId}' must be 1-128 letters, digits, '_' or '-'`);
    const definition = req.definition;
    const snapshot = initialSnapshot(executionId, definition);
    const runner = this.host(new ExecutionRunner(this.deps(), executionId, snapshot, null));
    try {
      await runner.commit({ type: 'ExecutionStarted', definition, input: req.input ?? {}, ...(req.budget ? { budget: req.budget } : {}) });
    } catch (err) {
      if (err instanceof ConcurrencyError) throw new InvalidExecutionStateError(`execution '${executionId}' already exists`, { executionId });
      throw err;
    }
    runner.kick();
    return runner;
  }

  /**
   * Resume an execution. With a checkpoint or step: rebuild the actor there and
   * re-run from it (FAILED, CANCELLED, or interrupted executions). Without
   * either: continue an interrupted execution from its last transition, or a
   * FAILED/CANCELLED one from its last checkpoint.
   */
  async resume(executionId: string, req: ResumeRequest = {}): Promise<ExecutionRunner> {
    if (req.checkpointId && req.fromStep) throw new InvalidInputError('give either a checkpoint or a step to resume from, not both');
    await this.assertNoLiveOwner(executionId);
    const loaded = await loadExecution(this.log, executionId);
    const current = loaded.fold.snapshot;
    const status = statusOf(current);
    if (status === 'COMPLETED') {
      throw new InvalidExecutionStateError(`execution '${executionId}' is COMPLETED: there is nothing to resume (start a new execution to run it again)`, { status });
    }
    const definition = req.steps === undefined ? current.context.definition : replacementDefinition(current.context.definition, req.steps);
    const interrupted = !isTerminal(status) && status !== 'PENDING';

    // Where to rebuild the actor: a named checkpoint; where the step's stage began; the last
    // transition of an interrupted execution; or the last checkpoint of a failed/cancelled one.
    let at: { seq: number; snapshot: WorkflowSnapshot };
    if (req.checkpointId) {
      const seq = findCheckpoint(executionId, loaded.records, req.checkpointId).seq;
      at = { seq, snapshot: loaded.fold.checkpoints.get(seq)! };
    } else if (req.fromStep) {
      at = stageEntry(loaded, req.fromStep) ?? { seq: loaded.fold.lastSeq, snapshot: current };
    } else if (interrupted) {
      at = { seq: loaded.fold.lastSeq, snapshot: current };
    } else {
      const seq = lastCheckpointSeq(loaded);
      at = { seq, snapshot: loaded.fold.checkpoints.get(seq)! };
    }
    const next = resumeSnapshot(at.snapshot, { definition, fromStep: req.fromStep, budget: req.budget });

    const runner = this.host(new ExecutionRunner(this.deps(), executionId, current, { seq: loaded.fold.lastSeq, hash: loaded.records[loaded.records.length - 1].record.hash }));
    await runner.commit(
      {
        type: 'ExecutionResumed',
        checkpointSeq: at.seq,
        reason: req.checkpointId || req.fromStep || !interrupted ? 'resume' : 'recovery',
        ...(req.fromStep ? { fromStep: req.fromStep } : {}),
        ...(req.steps !== undefined ? { definition } : {}),
        ...(req.budget ? { budget: req.budget } : {}),
      },
      next,
    );
    runner.kick();
    return runner;
  }

  async cancel(executionId: string, reason?: string): Promise<void> {
    const local = this.runners.get(executionId);
    if (local) return local.cancel(reason);
    if (await this.forward(executionId, { op: 'cancel', reason })) return;
    // Nobody hosts it: record the cancellation directly after the last record.
    const runner = await this.adopt(executionId);
    await runner.cancel(reason);
  }

  async signal(executionId: string, name: string, payload: unknown): Promise<ExecutionRunner | undefined> {
    const local = this.runners.get(executionId);
    if (local) { await local.signal(name, payload); return local; }
    if (await this.forward(executionId, { op: 'signal', name, payload })) return undefined;
    const runner = await this.adopt(executionId);
    await runner.signal(name, payload);
    return runner;
  }

  /** Whether a live process (this one or another) hosts the execution, and which. */
  async liveOwner(executionId: string): Promise<string | undefined> {
    if (this.runners.has(executionId)) return this.owner;
    try {
      const reply = await this.nc.request(controlSubject(executionId), encoder.encode(JSON.stringify({ op: 'ping' })), { timeout: 2000 });
      return (JSON.parse(decoder.decode(reply.data)) as ControlReply).owner;
    } catch (err) {
      if (err instanceof natsErrors.NoRespondersError || (err as Error).name === 'NoRespondersError') return undefined;
      if (err instanceof natsErrors.TimeoutError) return undefined;
      if ((err as { cause?: unknown }).cause instanceof natsErrors.NoRespondersError) return undefined;
      throw err;
    }
  }

  /**
   * Host an execution that nobody hosts, from its log, without writing anything
   * unless it was interrupted mid-step (then it is resumed from its last
   * transition). Used for signals to passivated executions and recovery.
   */
  async adopt(executionId: string): Promise<ExecutionRunner> {
    const existing = this.runners.get(executionId);
    if (existing) return existing;
    await this.assertNoLiveOwner(executionId);
    const loaded = await loadExecution(this.log, executionId);
    const snap = loaded.fold.snapshot;
    const status = statusOf(snap);
    const inFlight = Object.values(stepPhases(snap)).some((p) => p === 'running' || p === 'backoff');
    if (inFlight && !isTerminal(status)) return this.resume(executionId);
    const last = loaded.records[loaded.records.length - 1];
    const runner = this.host(new ExecutionRunner(this.deps(), executionId, snap, { seq: last.seq, hash: last.record.hash }));
    if (!isTerminal(status)) runner.kick();
    return runner;
  }

  /** Stop hosting everything (shutdown). Executions stay as recorded and can be continued elsewhere. */
  async close(): Promise<void> {
    for (const r of this.runners.values()) r.stop();
    await Promise.all([...this.subs.values()].map((s) => s.drain().catch(() => undefined)));
    this.subs.clear();
    this.runners.clear();
  }

  /** Stop hosting one execution (passivation) without writing anything. */
  release(executionId: string): void {
    this.runners.get(executionId)?.stop();
  }

  private deps() {
    return { log: this.log, executors: this.executors, onRecord: this.onRecord };
  }

  private host(runner: ExecutionRunner): ExecutionRunner {
    const id = runner.executionId;
    this.runners.set(id, runner);
    const sub = this.nc.subscribe(controlSubject(id), {
      callback: (err, msg) => {
        if (err) return;
        void this.answer(runner, JSON.parse(decoder.decode(msg.data)) as ControlRequest).then((reply) => msg.respond(encoder.encode(JSON.stringify(reply))));
      },
    });
    this.subs.set(id, sub);
    const release = () => {
      if (this.runners.get(id) === runner) {
        this.runners.delete(id);
        this.subs.get(id)?.unsubscribe();
        this.subs.delete(id);
      }
    };
    runner.done.then(release, release);
    return runner;
  }

  private async answer(runner: ExecutionRunner, req: ControlRequest): Promise<ControlReply> {
    try {
      if (req.op === 'cancel') await runner.cancel(req.reason);
      else if (req.op === 'signal') await runner.signal(req.name, req.payload);
      return { ok: true, owner: this.owner };
    } catch (err) {
      const e = err instanceof SmartSpecError ? err : new SmartSpecError('ERROR', (err as Error).message);
      return { ok: false, owner: this.owner, error: { code: e.code, message: e.message } };
    }
  }

  /** Send a control request to the live owner; false when there is none. Owner errors are rethrown. */
  private async forward(executionId: string, req: ControlRequest): Promise<boolean> {
    let reply: ControlReply;
    try {
      const msg = await this.nc.request(controlSubject(executionId), encoder.encode(JSON.stringify(req)), { timeout: 10_000 });
      reply = JSON.parse(decoder.decode(msg.data)) as ControlReply;
    } catch (err) {
      if (err instanceof natsErrors.NoRespondersError || (err as { cause?: unknown }).cause instanceof natsErrors.NoRespondersError) return false;
      throw err;
    }
    if (!reply.ok) {
      throw reply.error.code === 'INVALID_EXECUTION_STATE'
        ? new InvalidExecutionStateError(reply.error.message)
        : new SmartSpecError(reply.error.code, reply.error.message);
    }
    return true;
  }

  private async assertNoLiveOwner(executionId: string): Promise<void> {
    const owner = await this.liveOwner(executionId);
    if (owner) throw new ExecutionOwnedError(executionId, owner);
  }
}

/** Replacement steps: a definition document whose steps replace the recorded ones. */
function replacementDefinition(recorded: Definition, doc: unknown): Definition {
  const steps = (doc as { steps?: unknown })?.steps;
  if (!Array.isArray(steps) || steps.length === 0) throw new NoStepsError('the replacement definition has no steps');
  const d = doc as Partial<Definition>;
  return validateDefinition({ ...recorded, steps, parallel: d.parallel ?? [], ...(d.budget ? { budget: d.budget } : {}) });
}

function lastCheckpointSeq({ records }: LoadedExecution): number {
  for (let i = records.length - 1; i >= 0; i--) {
    const t = records[i].record.type;
    if (t === 'ExecutionStarted' || t === 'StepCompleted' || t === 'SignalReceived' || t === 'ExecutionResumed') return records[i].seq;
  }
  return records[0].seq;
}

/** The latest checkpoint at which the step's stage was about to begin (all its steps pending). */
function stageEntry({ records, fold }: LoadedExecution, stepId: string): { seq: number; snapshot: WorkflowSnapshot } | undefined {
  for (let i = records.length - 1; i >= 0; i--) {
    const snapshot = fold.checkpoints.get(records[i].seq);
    if (!snapshot) continue;
    const stage = activeStage(snapshot);
    if (!stage?.steps.some((st) => st.id === stepId)) continue;
    const phases = stepPhases(snapshot);
    if (stage.steps.every((st) => phases[st.id] === 'pending')) return { seq: records[i].seq, snapshot };
  }
  return undefined;
}
