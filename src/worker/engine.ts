/**
 * The engine: starts, resumes, cancels and signals executions, hosting each as
 * an ExecutionRunner. Every hosted execution answers on its control subject,
 * so any process can tell whether a live owner exists and reach it; an
 * execution with no live owner is taken over from its log.
 */
import { randomUUID } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { errors as natsErrors } from '@nats-io/transport-node';
import { isNoResponders, otherOwners, pingOwner, type ControlReply, type ControlRequest } from './control.js';
import { initialSnapshot, isTerminal, statusOf, stepPhases, type WorkflowSnapshot } from '../../machines/index.js';
import type { Budget, Definition } from '../../machines/definition.js';
import type { OuterScope, ParentLink, TriggeringEvent, Usage, WorkflowEvent } from '../../machines/events.js';
import { parentEvent, type ChildHost, type ChildStart } from './children.js';
import type { WorkflowRegistry } from '../registry/workflows.js';
import type { CommandBus } from '../bus/commands.js';
import type { WaitStore } from '../events/waitStore.js';
import { ConcurrencyError, ExecutionExistsError, ExecutionOwnedError, InvalidExecutionStateError, InvalidInputError, SmartSpecError } from '../errors.js';
import { EventLog } from '../log/eventLog.js';
import type { ExecutionIndex } from '../registry/executionIndex.js';
import type { StoredRecord } from '../log/records.js';
import { checkpointSeqOf, loadExecution, loadForResume, type LoadedExecution } from '../log/views.js';
import type { SnapshotStore } from '../log/snapshots.js';
import type { ResumeRequest } from './resumePlan.js';
import { childFromStep, planResumeWithChildren } from './resumeItems.js';
import { controlSubject, EXECUTION_ID } from '../nats/names.js';
import { defaultExecutors } from '../steps/index.js';
import type { StepExecutors } from '../steps/types.js';
import { ExecutionRunner } from './runner.js';
import { payloadLimitsFromEnv } from '../payloads/config.js';
import { PayloadStore } from '../payloads/store.js';
import { assertNesting } from '../payloads/refs.js';
import type { TimerStore } from '../timers/timerStore.js';
import { limits } from '../limits.js';
import type { SecretResolver } from '../secrets/secretStore.js';
import { DEFAULT_TENANT, systemPrincipal, type Principal } from '../auth/principal.js';
import type { Admission } from '../concurrency/admission.js';

/** How long a ping's staleness check may read the log: well within the asker's 2 s wait. */
const STALENESS_CHECK_MS = 750;

/** Who acts when a caller of the engine names nobody (tests, embedders); the CLI names the OS user. */
const LOCAL_PRINCIPAL: Principal = { tenant: DEFAULT_TENANT, keyId: 'local' };

export interface EngineOptions {
  nc: NatsConnection;
  log?: EventLog;
  executors?: StepExecutors;
  /** Names this process in ownership answers (e.g. `cli:1234@host`). */
  owner?: string;
  onRecord?: (stored: StoredRecord, snapshot: WorkflowSnapshot) => void;
  /** Where runners keep snapshots every SNAPSHOT_EVERY records (resume reads from the nearest). */
  snapshots?: SnapshotStore;
  /** Kept up to date with each execution's status, for listings. */
  index?: ExecutionIndex;
  /** Where large values go (default: the `smartspec_payloads` bucket, limits from the environment). */
  payloads?: PayloadStore;
  /** Where steps' durable timers are kept, for every worker to fire. */
  timers?: TimerStore;
  /** Where waitForEvent steps keep their waits, for every worker's dispatcher. */
  waits?: WaitStore;
  /** Told about failures that have no caller to throw to (index writes). */
  onError?: (err: unknown, context: string) => void;
  /** Records one execution's history may hold (default SMARTSPEC_HISTORY_LIMIT). */
  historyLimit?: number;
  /** Where `{{secrets.NAME}}` comes from (src/secrets); default: SMARTSPEC_SECRET_* of the environment. */
  secrets?: SecretResolver;
  /** Recorded as who acted when a start, resume, cancel or signal names no principal (default: default/local). */
  principal?: Principal;
  /** Where `workflow` steps find the definitions their child executions run. */
  registry?: WorkflowRegistry;
  /**
   * A worker's command bus: child executions are started, and their ends reported to their
   * parents, by commands, so a worker holds each while it runs and another continues it after a
   * crash. Without it (the CLI, tests) both happen in this engine.
   */
  bus?: CommandBus;
  /** Concurrency and rate keys across all workers (src/concurrency); without it they are not enforced. */
  admission?: Admission;
}

export interface StartRequest {
  definition: Definition;
  input?: unknown;
  executionId?: string;
  budget?: Budget;
  /** Who starts it: recorded in ExecutionStarted, and its tenant owns the execution. */
  principal?: Principal;
  /** The event a trigger started it for: recorded in ExecutionStarted. */
  trigger?: TriggeringEvent;
  /** A child execution: the parent step it reports its end to, and (a map item) what its block reads. */
  parent?: ParentLink;
  outer?: OuterScope;
}

export type { ResumeRequest };

/** The records that end an execution (until a resume). */
const END_RECORDS = new Set(['ExecutionCompleted', 'ExecutionFailed', 'ExecutionCancelled']);
/** Control reply of a host that has just stopped hosting the execution. */
const NOT_HOSTED = 'NOT_HOSTED';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class Engine {
  readonly runners = new Map<string, ExecutionRunner>();
  private readonly subs = new Map<string, Subscription>();
  readonly owner: string;
  private readonly historyLimit: number;

  private constructor(
    readonly nc: NatsConnection,
    readonly log: EventLog,
    readonly payloads: PayloadStore,
    private readonly executors: StepExecutors,
    owner: string,
    private readonly options: EngineOptions,
  ) {
    this.owner = owner;
    this.historyLimit = options.historyLimit ?? limits().historyLimit;
  }

  static async create(options: EngineOptions): Promise<Engine> {
    const log = options.log ?? (await EventLog.open(options.nc));
    const payloads = options.payloads ?? new PayloadStore(options.nc, { limits: payloadLimitsFromEnv() });
    return new Engine(options.nc, log, payloads, options.executors ?? defaultExecutors(), options.owner ?? `pid:${process.pid}`, options);
  }

  /** Start a new execution: its first record is ExecutionStarted. */
  async start(req: StartRequest): Promise<ExecutionRunner> {
    const executionId = req.executionId ?? randomUUID();
    if (!EXECUTION_ID.test(executionId)) throw new InvalidInputError(`executionId '${executionId}' must be 1-128 letters, digits, '_' or '-'`);
    // A repeated start (a redelivered command) must not disturb the runner hosting it here.
    if (this.runners.has(executionId)) throw new ExecutionExistsError(executionId);
    const definition = req.definition;
    // Checked and, when large, stored before anything is hosted or recorded.
    let input: unknown;
    try {
      assertNesting(definition, this.payloads.limits.maxNesting, 'the definition');
      input = await this.payloads.accept(executionId, req.input ?? {}, { what: 'the input' });
    } catch (err) {
      throw this.refusedStart(executionId, err);
    }
    if (this.runners.has(executionId)) throw new ExecutionExistsError(executionId);
    const snapshot = initialSnapshot(executionId, definition);
    const runner = this.host(new ExecutionRunner(this.deps(), executionId, snapshot, null));
    try {
      await runner.commit({
        type: 'ExecutionStarted', definition, input, ...(req.budget ? { budget: req.budget } : {}), principal: req.principal ?? this.defaultPrincipal, ...(req.trigger ? { trigger: req.trigger } : {}),
        ...(req.parent ? { parent: req.parent } : {}), ...(req.outer ? { outer: req.outer } : {}),
      });
    } catch (err) {
      if (err instanceof ConcurrencyError) throw new ExecutionExistsError(executionId);
      throw this.refusedStart(executionId, err);
    }
    runner.kick();
    return runner;
  }

  /**
   * A start that can never be recorded (input too deep or too large, a record NATS refuses):
   * the index entry the edge wrote for it goes, so no PENDING entry waits for it forever.
   */
  private refusedStart(executionId: string, err: unknown): unknown {
    if (err instanceof SmartSpecError && !err.retryable) {
      this.options.index?.remove(executionId).catch((e) => this.options.onError?.(e, 'execution index removal'));
    }
    return err;
  }

  /**
   * Resume an execution. With a checkpoint or step: rebuild the actor there and
   * re-run from it (FAILED, CANCELLED, or interrupted executions). Without
   * either: continue an interrupted execution from its last transition, or a
   * FAILED/CANCELLED one from its last checkpoint.
   */
  async resume(executionId: string, req: ResumeRequest = {}, principal?: Principal): Promise<ExecutionRunner> {
    // Both only read: the owner check need not wait for the load (an owner found throws all the same).
    const [, loaded] = await Promise.all([this.assertNoLiveOwner(executionId), loadForResume(this.log, this.options.snapshots, executionId, checkpointSeqOf(req.checkpointId))]);
    // From a step inside a map's block or a child workflow: the children are resumed from it too.
    const plan = await planResumeWithChildren(this.log, loaded, req, this.historyLimit);
    const last = loaded.records[loaded.records.length - 1];
    const runner = this.host(new ExecutionRunner(this.deps(), executionId, loaded.fold.snapshot, { seq: last.seq, hash: last.record.hash }, loaded.recordCount));
    // Nobody asked for a recovery (a crash did): the system acts, for the execution's tenant.
    const by = principal ?? (plan.event.reason === 'recovery' ? systemPrincipal(tenantOf(loaded.records)) : this.defaultPrincipal);
    await runner.commit({ ...plan.event, principal: by }, plan.next);
    runner.kick();
    return runner;
  }

  async cancel(executionId: string, reason?: string, principal: Principal = this.defaultPrincipal): Promise<void> {
    const local = await this.hostedHere(executionId);
    if (local) return local.cancel(reason, principal);
    if (await this.forward(executionId, { op: 'cancel', reason, principal })) return;
    // Nobody hosts it: record the cancellation directly after the last record.
    const runner = await this.adopt(executionId);
    await runner.cancel(reason, principal);
  }

  async signal(executionId: string, name: string, given: unknown, principal: Principal = this.defaultPrincipal): Promise<ExecutionRunner | undefined> {
    // Stored first when large: the record, and a request forwarded to the host, carry a ref.
    const payload = await this.payloads.accept(executionId, given, { what: `the payload of signal '${name}'`, tooDeepCode: 'INPUT_TOO_DEEP' });
    const local = await this.hostedHere(executionId);
    if (local) { await local.signal(name, payload, principal); return local; }
    if (await this.forward(executionId, { op: 'signal', name, payload, principal })) return undefined;
    const runner = await this.adopt(executionId);
    await runner.signal(name, payload, principal);
    return runner;
  }

  /**
   * A step's durable timer is due: record it where the execution is hosted, or host it
   * here. Refused (InvalidExecutionStateError) when it no longer applies.
   */
  async timer(executionId: string, stepId: string, attempt: number, at: string): Promise<ExecutionRunner | undefined> {
    const local = await this.hostedHere(executionId);
    if (local) { await local.fireTimer(stepId, attempt, at); return local; }
    if (await this.forward(executionId, { op: 'timer', stepId, attempt, at })) return undefined;
    const runner = await this.adopt(executionId);
    await runner.fireTimer(stepId, attempt, at);
    return runner;
  }

  /**
   * A slot of a concurrency key may be free for `holder` (a queued step attempt, or the
   * execution): admit it again where it is hosted, or host it here. Refused
   * (InvalidExecutionStateError) when the holder no longer waits.
   */
  async wake(executionId: string, holder: string): Promise<ExecutionRunner | undefined> {
    const local = await this.hostedHere(executionId);
    if (local) { local.wake(holder); return local; }
    if (await this.forward(executionId, { op: 'wake', holder })) return undefined;
    const runner = await this.adopt(executionId);
    runner.wake(holder);
    return runner;
  }

  get admission(): Admission | undefined {
    return this.options.admission;
  }

  private get defaultPrincipal(): Principal {
    return this.options.principal ?? LOCAL_PRINCIPAL;
  }

  /** Whether a live process (this one or another) hosts the execution, and which. */
  async liveOwner(executionId: string): Promise<string | undefined> {
    const local = this.runners.get(executionId);
    if (local && (await this.hosts(local))) return this.owner;
    return pingOwner(this.nc, executionId);
  }

  /**
   * Host an execution that nobody hosts, from its log, without writing anything
   * unless it was interrupted mid-step (then it is resumed from its last
   * transition). Used for signals to passivated executions and recovery.
   */
  adopt(executionId: string): Promise<ExecutionRunner> {
    // Two commands for one passivated execution arriving together must share one runner.
    let adopting = this.adopting.get(executionId);
    if (adopting) return adopting;
    const existing = this.runners.get(executionId);
    if (existing) return Promise.resolve(existing);
    adopting = this.takeOver(executionId).finally(() => this.adopting.delete(executionId));
    this.adopting.set(executionId, adopting);
    return adopting;
  }

  private readonly adopting = new Map<string, Promise<ExecutionRunner>>();

  /**
   * The runner hosting the execution here, once a take-over under way has decided. A runner taken
   * over is hosted (it answers pings) before it looks for a rival host; a command that reached it
   * then set it going, and when the rival kept the execution both had started the step.
   */
  private async hostedHere(executionId: string): Promise<ExecutionRunner | undefined> {
    await this.adopting.get(executionId)?.catch(() => undefined);
    return this.runners.get(executionId);
  }

  private async takeOver(executionId: string): Promise<ExecutionRunner> {
    await this.assertNoLiveOwner(executionId);
    const loaded = await loadExecution(this.log, executionId);
    const snap = loaded.fold.snapshot;
    const status = statusOf(snap);
    // An ended execution is not hosted: there is nothing to run, and a host would claim it forever.
    if (isTerminal(status)) throw new InvalidExecutionStateError(`execution '${executionId}' is ${status}`, { status });
    const inFlight = Object.values(stepPhases(snap)).some((p) => p === 'running' || p === 'backoff');
    if (inFlight) return this.resume(executionId);
    const last = loaded.records[loaded.records.length - 1];
    const runner = this.host(new ExecutionRunner(this.deps(), executionId, snap, { seq: last.seq, hash: last.record.hash }, loaded.recordCount));
    // Two processes may have found no owner at the same moment. Now that this one answers on
    // the control subject, look again: of two hosts, the one with the smaller name keeps it.
    const rival = (await otherOwners(this.nc, executionId, this.owner)).sort()[0];
    if (rival !== undefined && rival < this.owner) {
      runner.stop({ handedOver: true });
      throw new ExecutionOwnedError(executionId, rival);
    }
    runner.kick();
    return runner;
  }

  private holding = false;
  private closed = false;

  /**
   * First half of a graceful shutdown: start no new step in any execution
   * hosted here (or hosted from now on), and wait up to `graceMs` for the
   * steps in flight to finish and be recorded.
   */
  async holdNewSteps(graceMs: number): Promise<void> {
    this.holding = true;
    for (const r of this.runners.values()) r.holdNewSteps();
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.runners.values()].some((r) => r.busy)) await new Promise((res) => setTimeout(res, 20));
  }

  /** Stop hosting everything (shutdown). Executions stay as recorded and can be continued elsewhere. */
  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.runners.values()) r.stop();
    await Promise.all([...this.subs.values()].map((s) => s.drain().catch(() => undefined)));
    this.subs.clear();
    this.runners.clear();
    // A status the index holds back (ExecutionIndex.update) goes out now, before NATS closes; not
    // waited for: in an outage that write keeps trying, and the shutdown must not.
    void this.options.index?.flush();
  }

  /**
   * Stop hosting one execution (passivation) without writing anything, if its runner is still
   * idle; false when it has been set going again since it settled (then it is hosted on). Only
   * this runner: another one hosting the execution by now is not this caller's to let go.
   */
  passivate(runner: ExecutionRunner, wakeWithinMs: number): boolean {
    return runner.passivate(wakeWithinMs);
  }

  private deps() {
    return { log: this.log, payloads: this.payloads, executors: this.executors, onRecord: this.recorded, snapshots: this.options.snapshots, onError: this.options.onError, timers: this.options.timers, waits: this.options.waits, historyLimit: this.historyLimit, secrets: this.options.secrets, children: this.children, admission: this.options.admission };
  }

  /** Child executions (src/worker/children.ts): started and cancelled through this engine, for any of its runners. */
  private readonly children: ChildHost = {
    resolve: async (parentId, workflowId, version, starting) => {
      const { registry } = this.options;
      if (!registry) throw new SmartSpecError('NO_REGISTRY', `no workflow registry: this engine cannot start workflow '${workflowId}' as a child`);
      const tenant = (await this.principalOf(parentId)).tenant;
      return (await (starting ? registry.runnable(workflowId, version, tenant) : registry.get(workflowId, version, tenant))).definition;
    },
    ensure: async (start: ChildStart) => {
      const principal = await this.principalOf(start.parent.executionId);
      // Closed (shutdown): no child starts here; whoever continues the parent makes sure of it.
      if (this.closed) return;
      if (start.resume && (await this.resumeChild(start, principal))) return;
      const { bus } = this.options;
      if (bus) {
        // A child that ended reports again (its parent may not have recorded it); any other is started, or continued, by a command.
        const last = await this.log.last(start.childId);
        if (last && END_RECORDS.has(last.record.type)) return this.childEnd(start.childId, start.parent, last.record as WorkflowEvent, await this.usageOf(start.childId), last.seq);
        await bus.publish('start', { executionId: start.childId, definition: start.definition, input: start.input, budget: start.budget, principal, parent: start.parent, outer: start.outer }, `start:${start.childId}`);
        return;
      }
      try {
        await this.start({ executionId: start.childId, definition: start.definition, input: start.input, budget: start.budget, principal, parent: start.parent, outer: start.outer });
        return;
      } catch (err) {
        if (!(err instanceof ExecutionExistsError)) throw err;
      }
      // It exists: hosted (it reports when it ends), ended (report again: the parent may not have recorded it), or orphaned (continue it).
      if (this.runners.has(start.childId)) return;
      const loaded = await loadExecution(this.log, start.childId);
      const snap = loaded.fold.snapshot;
      if (isTerminal(statusOf(snap))) return this.childEnd(start.childId, start.parent, loaded.records[loaded.records.length - 1].record as WorkflowEvent, snap.context.usage, loaded.fold.lastSeq);
      if (!(await this.liveOwner(start.childId))) await this.adopt(start.childId).catch((e) => (e instanceof ExecutionOwnedError ? undefined : Promise.reject(e)));
    },
    cancel: async (childId, reason) => {
      try {
        await this.cancel(childId, reason, systemPrincipal((await this.principalOf(childId)).tenant));
      } catch (err) {
        if (!(err instanceof InvalidExecutionStateError)) throw err; // it ended meanwhile
      }
    },
  };

  /**
   * A child to resume from a step (a map item's, or a `workflow` step's): resumed once, while its log
   * is where it was when its parent was resumed; after that it is made sure of as any child (false).
   */
  private async resumeChild(start: ChildStart, principal: Principal): Promise<boolean> {
    const { fromStep, after } = start.resume!;
    if ((await this.log.last(start.childId))?.seq !== after) return false;
    const req = { fromStep: childFromStep(await loadExecution(this.log, start.childId), fromStep), ofChild: true, ...(start.budget ? { budget: start.budget } : {}) };
    if (this.options.bus) await this.options.bus.publish('resume', { executionId: start.childId, ...req, principal }, `resume:${start.childId}:${after}`);
    else await this.resume(start.childId, req, principal);
    return true;
  }

  /** A child's end (its record at `seq`), sent to its parent: by a command on a worker, else here. */
  private async childEnd(childId: string, parent: ParentLink, end: WorkflowEvent, usage: Usage, seq: number): Promise<void> {
    const event = parentEvent(parent, childId, end, usage);
    if (!event) return;
    // The message id names the end: a child resumed and ended again reports again.
    if (this.options.bus) await this.options.bus.publish('child', { executionId: parent.executionId, event: event as never }, `end:${childId}:${seq}`);
    else await this.reportToParent(parent.executionId, event);
  }

  private async usageOf(executionId: string): Promise<Usage> {
    return (await loadExecution(this.log, executionId)).fold.snapshot.context.usage;
  }

  /**
   * The `child` command: record a child's end in its parent, where the parent is hosted or here
   * (returned then, for the worker to hold while it runs). Refused when it no longer applies.
   */
  async childReport(parentId: string, event: WorkflowEvent): Promise<ExecutionRunner | undefined> {
    const local = await this.hostedHere(parentId);
    if (local) { await local.childEnded(event); return local; }
    if (await this.forward(parentId, { op: 'child', event })) return undefined;
    const runner = await this.adopt(parentId);
    await runner.childEnded(event);
    return runner;
  }

  /** Who started an execution (a child acts for its parent's principal and tenant). */
  private readonly principals = new Map<string, Principal>();
  private async principalOf(executionId: string): Promise<Principal> {
    const known = this.principals.get(executionId);
    if (known) return known;
    const start = await this.log.startSeq(executionId);
    const [first] = start === undefined ? [] : await this.log.read(executionId, start, start);
    const principal = (first?.record.type === 'ExecutionStarted' ? first.record.principal : undefined) ?? this.defaultPrincipal;
    // Kept while the execution runs here (a map asks once per item); dropped at its end.
    if (this.runners.has(executionId)) this.principals.set(executionId, principal);
    return principal;
  }

  /**
   * A child's end, recorded by its parent where the parent is hosted (here, elsewhere, or here after
   * taking it over: a passivated parent wakes for it). Refused when the parent has it already or moved on.
   */
  private async reportToParent(parentId: string, event: WorkflowEvent): Promise<void> {
    // Closed (shutdown): the parent is not taken over here; whoever continues it asks the child again.
    for (let attempt = 1; !this.closed; attempt++) {
      let host: ExecutionRunner | undefined;
      try {
        host = await this.hostedHere(parentId);
        if (host && !host.isStopped) return await host.childEnded(event);
        host = undefined;
        if (await this.forward(parentId, { op: 'child', event })) return;
        host = await this.adopt(parentId);
        return await host.childEnded(event);
      } catch (err) {
        // Refused: the parent has it already, or moved on. Unless its host let it go meanwhile: then ask again.
        if (err instanceof InvalidExecutionStateError && !host?.isStopped) return;
        // Contended (another process took it over, or wrote first): that host gets the report on its next try.
        if (attempt >= 5) throw err;
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  /** After each append: the caller's hook, and an index update when the status changed. */
  private readonly recorded = (stored: StoredRecord, snapshot: WorkflowSnapshot): void => {
    this.options.onRecord?.(stored, snapshot);
    const { record } = stored;
    const key = record.executionId;
    const started = record.type === 'ExecutionStarted';
    if (started && record.principal) this.principals.set(key, record.principal);
    if (END_RECORDS.has(record.type)) {
      this.principals.delete(key);
      // A child's end is its parent step's result.
      const parent = snapshot.context.parent;
      if (parent) this.childEnd(key, parent, record as WorkflowEvent, snapshot.context.usage, stored.seq).catch((err) => this.options.onError?.(err, `report child ${key} to parent ${parent.executionId}`));
    }
    const index = this.options.index;
    if (!index) return;
    const status = statusOf(snapshot);
    if (this.indexed.get(key) === status && !started) return;
    if (started) this.started.set(key, { createdAt: record.at, firstSeq: stored.seq, tenant: record.principal?.tenant ?? DEFAULT_TENANT });
    // Resumed or adopted here: the index keeps the existing entry's creation time and first record.
    const start = this.started.get(key) ?? {};
    if (isTerminal(status)) { this.indexed.delete(key); this.started.delete(key); }
    else this.indexed.set(key, status);
    index
      .update({ executionId: key, workflowId: record.workflowId, status, updatedAt: record.at, lastSeq: stored.seq, ...start })
      .catch((err) => this.options.onError?.(err, 'execution index update'));
  };
  /** Resolves once this process's index writes for the execution are done: its command is acked only then. */
  async indexWritten(executionId: string): Promise<void> {
    await this.options.index?.settled(executionId);
  }

  /**
   * Bring the index up to an execution's log when it lags (its host died between appending a
   * status change and writing it to the index): called for a command whose execution nobody hosts.
   */
  async reconcileIndex(loaded: LoadedExecution): Promise<void> {
    const index = this.options.index;
    if (!index) return;
    const { snapshot, lastSeq } = loaded.fold;
    const status = statusOf(snapshot);
    const entry = await index.get(loaded.executionId);
    if (entry?.status === status) return;
    const last = loaded.records.at(-1)?.record;
    await index.update({ executionId: loaded.executionId, workflowId: snapshot.context.definition.id, status, updatedAt: last?.at ?? new Date().toISOString(), lastSeq });
  }

  /** The status last written to the index, per execution hosted here. */
  private readonly indexed = new Map<string, string>();
  private readonly started = new Map<string, { createdAt: string; firstSeq: number; tenant: string }>();

  private host(runner: ExecutionRunner): ExecutionRunner {
    const id = runner.executionId;
    this.runners.get(id)?.stop(); // never two runners for one execution in one process
    if (this.holding) runner.holdNewSteps();
    this.subs.get(id)?.unsubscribe();
    this.runners.set(id, runner);
    const sub = this.nc.subscribe(controlSubject(id), {
      callback: (err, msg) => {
        if (err) return;
        void this.answer(runner, JSON.parse(decoder.decode(msg.data)) as ControlRequest)
          .catch((err: Error): ControlReply => ({ ok: false, owner: this.owner, error: { code: 'ERROR', message: err.message } }))
          .then((reply) => msg.respond(encoder.encode(JSON.stringify(reply))));
      },
    });
    this.subs.set(id, sub);
    const release = () => {
      if (this.runners.get(id) === runner) {
        this.runners.delete(id);
        // Drained, not dropped: a ping the server routed here before it had our unsubscribe (one sent
        // as the execution ended: a resume posted the moment its failure shows) is still answered,
        // "not hosted". Dropped, it went unanswered, and its asker waited to ask again.
        this.subs.get(id)?.drain().catch(() => undefined);
        this.subs.delete(id);
      }
    };
    runner.done.then(release, release);
    return runner;
  }

  private async answer(runner: ExecutionRunner, req: ControlRequest): Promise<ControlReply> {
    const notHosted: ControlReply = { ok: false, owner: this.owner, error: { code: NOT_HOSTED, message: 'no longer hosted here' } };
    // A ping is answered at once (a rival's take-over asks it); anything else waits for this one's to decide.
    if (req.op !== 'ping' && (await this.hostedHere(runner.executionId)) !== runner) return notHosted;
    if (!(await this.hosts(runner))) return notHosted;
    try {
      if (req.op === 'cancel') await runner.cancel(req.reason, req.principal ?? this.defaultPrincipal);
      else if (req.op === 'signal') await runner.signal(req.name, req.payload, req.principal ?? this.defaultPrincipal);
      else if (req.op === 'timer') await runner.fireTimer(req.stepId, req.attempt, req.at);
      else if (req.op === 'child') await runner.childEnded(req.event);
      else if (req.op === 'wake') runner.wake(req.holder);
      return { ok: true, owner: this.owner };
    } catch (err) {
      const e = err instanceof SmartSpecError ? err : new SmartSpecError('ERROR', (err as Error).message);
      return { ok: false, owner: this.owner, error: { code: e.code, message: e.message } };
    }
  }

  /**
   * Whether a runner still hosts its execution. One whose execution has ended is letting go (its
   * end may be in the log before it has read the append's answer): wait for that, then it is no
   * owner, so a resume right after the end goes ahead. One whose log has moved on without it is
   * stale (another process continued the execution, or ended it, while this one was cut off; its
   * next append would be refused): it lets go.
   */
  private async hosts(runner: ExecutionRunner): Promise<boolean> {
    if (isTerminal(runner.status)) {
      await runner.done.catch(() => undefined);
      return false;
    }
    if (runner.isStopped) return false;
    // The log slow or out of reach (a fail-over): it cannot be shown stale, and its next append
    // is checked against the log anyway, so it keeps the execution. Bounded, so that a ping is
    // answered before the asker gives up and takes the execution over (a step run twice).
    const last = await withinMs(this.log.last(runner.executionId), STALENESS_CHECK_MS).catch(() => undefined);
    if (last === undefined) return true;
    // Idle at WAITING it writes nothing, so any other last record is another writer's; running,
    // its own append may be in flight: only an end it did not write gives it away.
    const stale = runner.status === 'WAITING' ? last?.seq !== runner.lastSeq : last !== null && last.seq > runner.lastSeq && END_RECORDS.has(last.record.type);
    if (stale) runner.stop({ handedOver: true });
    return !stale;
  }

  /** Send a control request to the live owner; false when there is none. Owner errors are rethrown. */
  private async forward(executionId: string, req: ControlRequest): Promise<boolean> {
    let reply: ControlReply;
    try {
      const msg = await this.nc.request(controlSubject(executionId), encoder.encode(JSON.stringify(req)), { timeout: 5_000 });
      reply = JSON.parse(decoder.decode(msg.data)) as ControlReply;
    } catch (err) {
      if (isNoResponders(err)) return false;
      if (!(err instanceof natsErrors.TimeoutError)) throw err;
      // No answer in time: nobody (any more) or a host too busy. Ask again who owns it.
      const owner = await pingOwner(this.nc, executionId);
      if (!owner) return false;
      throw new ExecutionOwnedError(executionId, owner);
    }
    // The host let it go (passivated) as the request arrived: take it over here.
    if (!reply.ok && reply.error.code === NOT_HOSTED) return false;
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

/** The tenant an execution belongs to, from the records at hand: its start's principal (old logs: the default tenant). */
function tenantOf(records: StoredRecord[]): string {
  for (const { record } of records) if (record.type === 'ExecutionStarted') return record.principal?.tenant ?? DEFAULT_TENANT;
  return DEFAULT_TENANT;
}

/** The promise's value, or undefined once `ms` have passed. */
function withinMs<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((res) => (timer = setTimeout(() => res(undefined), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
