/**
 * A worker: consumes SMARTSPEC_COMMANDS (each of its partitions) through the
 * durable consumer all workers share, and hosts the executions the commands
 * are about. While an execution runs, the worker holds the command that made
 * it the host, un-acked, telling JetStream it is still working; if the worker
 * dies, JetStream redelivers the command after the ack wait and another worker
 * continues the execution from its last recorded transition. A command is
 * acked when its execution ends or waits for a signal or a sleep (then it is
 * passivated: a waiting execution costs no memory and holds no slot; its
 * signal, or its timer, which every worker watches, brings it back on any
 * worker).
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { ZodError } from 'zod';
import { isTerminal, statusOf, stepPhases } from '../../machines/index.js';
import { validateDefinitionCached } from '../definition/validate.js';
import { definitionSchema, type Definition } from '../../machines/definition.js';
import type { WorkflowEvent } from '../../machines/events.js';
import { ExecutionExistsError, ExecutionNotFoundError, InvalidExecutionStateError, SmartSpecError } from '../errors.js';
import { loadExecution } from '../log/views.js';
import { CommandBus, parseCommand, type Command } from '../bus/commands.js';
import { COMMAND_TYPES, type CommandType } from '../nats/names.js';
import type { Engine } from './engine.js';
import { NATS_PRINCIPAL } from '../auth/principal.js';
import type { ExecutionRunner } from './runner.js';
import { assertNesting } from '../payloads/refs.js';
import type { TimerStore } from '../timers/timerStore.js';
import { TimerWatcher } from '../timers/timerWatcher.js';
import { LeaseSweeper } from '../concurrency/leaseSweeper.js';

/** A sleep that ends within this is waited out in place: passivating it would cost more than it saves. */
const SHORT_SLEEP_MS = 1000;

export interface WorkerOptions {
  engine: Engine;
  bus: CommandBus;
  logger: Logger;
  /** Executions this worker hosts at once (more commands wait in the stream). */
  concurrency?: number;
  /** The consumer's ack wait; the worker says "working" three times per period. */
  ackWaitMs?: number;
  /** Pending step timers: the worker fires those that fall due (TimerWatcher). */
  timers?: TimerStore;
}

export class Worker {
  private running = 0;
  private readonly slotWaiters = new Set<() => void>();
  private stopping = false;
  private readonly messages: { stop(): void; close(): Promise<void | Error> }[] = [];
  private readonly loops: Promise<void>[] = [];
  /** Commands being handled (held while their execution runs here). */
  private readonly handling = new Set<Promise<void>>();
  private timerWatcher?: TimerWatcher;
  private leaseSweeper?: LeaseSweeper;

  constructor(private readonly options: WorkerOptions) {}

  async start(): Promise<void> {
    // One consumer per command partition (one without NATS_PARTITIONS), all feeding the same slots.
    const consumers = await this.options.bus.consumers();
    const concurrency = this.options.concurrency ?? 256;
    if (this.options.timers) {
      this.timerWatcher = new TimerWatcher(this.options.timers, this.options.bus, { onError: (err, what) => this.options.logger.warn({ err: describe(err) }, what) });
      this.timerWatcher.start();
    }
    const { admission } = this.options.engine;
    if (admission) {
      this.leaseSweeper = new LeaseSweeper(admission, { onError: (err, what) => this.options.logger.warn({ err: describe(err) }, what) });
      this.leaseSweeper.start();
    }
    for (const consumer of consumers) {
      // Short pulls: after a fail-over a pull parked on a dead consumer leader is noticed in seconds.
      const messages = await consumer.consume({ max_messages: Math.max(1, Math.ceil(Math.min(concurrency, 128) / consumers.length)), expires: 5000 });
      this.messages.push(messages);
      this.loops.push((async () => {
        for await (const msg of messages) {
          while (this.running >= concurrency && !this.stopping) await new Promise<void>((r) => this.slotWaiters.add(r));
          // Delivered but not taken: straight back to the stream for another worker.
          if (this.stopping) { msg.nak(); continue; }
          this.running++;
          const handling = this.handle(msg).finally(() => {
            this.running--;
            this.handling.delete(handling);
            this.freeSlot();
          });
          this.handling.add(handling);
        }
      })());
    }
  }

  /** Every loop waiting for a slot looks again (there are as many loops as partitions). */
  private freeSlot(): void {
    const waiters = [...this.slotWaiters];
    this.slotWaiters.clear();
    for (const wake of waiters) wake();
  }

  /**
   * Stop taking commands; let the steps in flight finish for up to `graceMs`
   * (starting no new ones), then stop hosting: the command of every execution
   * not finished here is handed back (nak, no delay), so another worker
   * continues it at once. Nothing unfinished is acknowledged.
   */
  async stop(graceMs = 0): Promise<void> {
    const { engine } = this.options;
    this.stopping = true;
    this.timerWatcher?.stop();
    this.leaseSweeper?.stop();
    this.freeSlot();
    for (const messages of this.messages) messages.stop();
    await engine.holdNewSteps(graceMs);
    await engine.close();
    await Promise.all(this.loops.map((loop) => loop.catch(() => undefined)));
    // A command whose handling was under way may have hosted its execution after close(): stop again.
    // (Bounded: a command still unanswered after that is redelivered after the ack wait.)
    const deadline = Date.now() + 10_000;
    while (this.handling.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.handling]), new Promise((r) => setTimeout(r, 100))]);
      if (this.handling.size > 0) await engine.close();
    }
    await engine.nc.flush().catch(() => undefined); // the naks leave before the connection closes
  }

  private async handle(msg: JsMsg): Promise<void> {
    const { logger } = this.options;
    const type = msg.subject.slice(msg.subject.lastIndexOf('.') + 1) as CommandType;
    let command: Command;
    try {
      if (!(COMMAND_TYPES as readonly string[]).includes(type)) throw new SmartSpecError('INVALID_COMMAND', `unknown command subject ${msg.subject}`);
      command = parseCommand(type, msg.json());
    } catch (err) {
      logger.error({ subject: msg.subject, err: describe(err) }, 'invalid command dropped');
      return msg.term();
    }
    const log = logger.child({ command: type, executionId: command.executionId, delivery: msg.info.deliveryCount });
    if (type === 'timer') {
      // Fired early by a worker whose clock is ahead: back into the stream until it is due here too.
      const early = Date.parse((command as Command<'timer'>).at) - Date.now();
      if (early > 0) return msg.nak(early);
    }
    let runner: ExecutionRunner | undefined;
    try {
      runner = await this.apply(type, command);
    } catch (err) {
      if (type === 'timer' && err instanceof InvalidExecutionStateError) {
        // The step moved on (its signal came, it was cancelled, the execution ended): the timer is spent.
        log.debug({ err: describe(err) }, 'timer no longer applies');
        await this.options.timers?.disarmSpent(command as Command<'timer'>).catch((e) => log.warn({ err: describe(e) }, 'timer disarm'));
        return this.hostWhileRunning(msg, command.executionId, log);
      }
      if (type === 'wake' && (err instanceof InvalidExecutionStateError || err instanceof ExecutionNotFoundError)) {
        // The waiter is gone (its execution ended, or moved on): its place in the queue goes too.
        const c = command as Command<'wake'>;
        await this.options.engine.admission?.dequeue(c.key, c.holder).catch((e) => log.warn({ err: describe(e) }, 'queue cleanup'));
        return msg.ack();
      }
      if (err instanceof ExecutionNotFoundError && type !== 'start' && msg.info.deliveryCount < 5) {
        // The start command may still be on its way (commands are not ordered across workers).
        return msg.nak(1000);
      }
      // Not applied because another process hosts it or wrote first: try again (it reaches the owner).
      const contended = err instanceof SmartSpecError && (err.code === 'CONCURRENT_WRITE' || err.code === 'EXECUTION_OWNED');
      if ((type === 'signal' || type === 'cancel' || type === 'timer' || type === 'child' || type === 'wake') && contended && msg.info.deliveryCount < 10) return msg.nak(200);
      if (!(err instanceof SmartSpecError) || err.retryable) {
        log.warn({ err: describe(err) }, 'command failed; it will be redelivered');
        return msg.nak(2000);
      }
      log.warn({ err: describe(err) }, 'command refused');
    }
    await this.hostWhileRunning(msg, command.executionId, log, runner);
  }

  /** Carry the command out; returns the runner when this process now hosts the execution. */
  private async apply(type: CommandType, command: Command): Promise<ExecutionRunner | undefined> {
    const { engine } = this.options;
    switch (type) {
      case 'start': {
        const c = command as Command<'start'>;
        // Validating a definition nested thousands of levels deep would overflow the stack: refuse it first.
        assertNesting(c.definition, engine.payloads.limits.maxNesting, 'the definition');
        // A map item's block reads steps outside it (given in `outer`): its shape is checked, its references were with its parent's.
        const definition = c.outer ? (definitionSchema.parse(c.definition) as Definition) : validateDefinitionCached(c.definition);
        try {
          return await engine.start({ executionId: c.executionId, definition, input: c.input, budget: c.budget, principal: c.principal ?? NATS_PRINCIPAL, trigger: c.trigger, parent: c.parent, outer: c.outer });
        } catch (err) {
          // Redelivered (its worker died) or repeated: the execution exists; hostWhileRunning continues it.
          if (!(err instanceof ExecutionExistsError)) throw err;
          return undefined;
        }
      }
      case 'resume': {
        const c = command as Command<'resume'>;
        return engine.resume(c.executionId, { checkpointId: c.checkpointId, fromStep: c.fromStep, steps: c.steps, budget: c.budget, ofChild: c.ofChild }, c.principal ?? NATS_PRINCIPAL);
      }
      case 'cancel': {
        const c = command as Command<'cancel'>;
        await engine.cancel(c.executionId, c.reason, c.principal ?? NATS_PRINCIPAL);
        return undefined;
      }
      case 'signal': {
        const c = command as Command<'signal'>;
        return engine.signal(c.executionId, c.name, c.payload ?? {}, c.principal ?? NATS_PRINCIPAL);
      }
      case 'timer': {
        const c = command as Command<'timer'>;
        return engine.timer(c.executionId, c.stepId, c.attempt, c.at);
      }
      case 'child': {
        const c = command as Command<'child'>;
        return engine.childReport(c.executionId, c.event as unknown as WorkflowEvent);
      }
      case 'wake': {
        const c = command as Command<'wake'>;
        return engine.wake(c.executionId, c.holder);
      }
      case 'recover':
        return undefined; // hostWhileRunning continues it if nobody does

    }
  }

  /**
   * Make sure the execution makes progress, and hold the command while it
   * runs here. Hosted elsewhere: that host holds its own command; if it is a
   * stale redelivery while the host lives, hand it back for later.
   */
  private async hostWhileRunning(msg: JsMsg, executionId: string, log: Logger, hosted?: ExecutionRunner): Promise<void> {
    const { engine } = this.options;
    let runner = hosted ?? engine.runners.get(executionId);
    try {
      if (!runner) {
        const owner = await engine.liveOwner(executionId);
        if (owner) return msg.ack();
        const loaded = await loadExecution(engine.log, executionId).catch((err) => (err instanceof ExecutionNotFoundError ? undefined : Promise.reject(err)));
        if (!loaded) return msg.ack();
        const snap = loaded.fold.snapshot;
        const status = statusOf(snap);
        const inFlight = Object.values(stepPhases(snap)).some((p) => p === 'running' || p === 'backoff' || p === 'pending');
        if (isTerminal(status) || (status === 'WAITING' && !inFlight)) {
          // Its last host may have died before writing this status to the index.
          await engine.reconcileIndex(loaded).catch((err) => log.warn({ err: describe(err) }, 'could not bring the index up to the log'));
          return msg.ack();
        }
        runner = await engine.adopt(executionId);
        log.info('continuing an execution nobody hosts');
      }
    } catch (err) {
      if (err instanceof InvalidExecutionStateError) return msg.ack(); // it ended meanwhile
      log.warn({ err: describe(err) }, 'could not take over the execution; command redelivered later');
      return msg.nak(2000);
    }
    const period = Math.max(100, Math.floor((this.options.ackWaitMs ?? 30_000) / 3));
    const heartbeat = setInterval(() => msg.working(), period);
    try {
      // Without a timer store nobody else would wake a sleeper: then it is waited out here.
      const wakeWithinMs = this.options.timers ? SHORT_SLEEP_MS : Infinity;
      let outcome = await runner.settled({ wakeWithinMs });
      // Another command taken since it settled (a wake, a signal) may have set it going again: then
      // it stays hosted here (letting it go would cut off the step it has just started).
      while (outcome.status === 'WAITING' && !engine.passivate(runner, wakeWithinMs)) outcome = await runner.settled({ wakeWithinMs });
      if (outcome.status === 'WAITING') { /* passivated */ }
      else if (!isTerminal(outcome.status)) {
        // Stopped while it runs (shutdown): unfinished, so never acked; another worker continues it now.
        log.info('handing the execution back to another worker');
        return msg.nak();
      }
      // Acked once the index has the status too: a worker dying between the two leaves the command
      // to be redelivered, and whoever takes it brings the index up to the log (reconcileIndex).
      await engine.indexWritten(executionId);
      msg.ack();
    } catch (err) {
      // Lost the log to another writer, or the log is unreachable: whoever continues holds its own command.
      log.warn({ err: describe(err) }, 'stopped hosting the execution');
      // A record NATS refuses as too large would be refused again after every redelivery.
      if (err instanceof SmartSpecError && (err.code === 'CONCURRENT_WRITE' || err.code === 'RECORD_TOO_LARGE')) msg.ack();
      else msg.nak(2000);
    } finally {
      clearInterval(heartbeat);
    }
  }
}

function describe(err: unknown): Record<string, unknown> {
  if (err instanceof ZodError) return { code: 'INVALID_COMMAND', issues: err.issues.map((i) => `${i.path.join('.')}: ${i.message}`) };
  if (err instanceof SmartSpecError) return { code: err.code, message: err.message };
  return { message: (err as Error)?.message ?? String(err) };
}
