/**
 * `run`, `resume`, `signal`, `cancel`: commands that host an execution in
 * this process (an engine) and follow it until it ends or waits. What they
 * start is in the execution index like any other execution, so `list` and
 * GET /executions show it.
 */
import { walkSteps } from '../../../machines/blocks.js';
import { hostname } from 'node:os';
import { stepMapHas, stepMapToObject, stepPhases } from '../../../machines/index.js';
import { parseDefinition, parseDocument } from '../../definition/validate.js';
import { DefinitionError, InvalidInputError } from '../../errors.js';
import { EventLog } from '../../log/eventLog.js';
import { SnapshotStore } from '../../log/snapshots.js';
import { ExecutionIndex } from '../../registry/executionIndex.js';
import { WorkflowRegistry } from '../../registry/workflows.js';
import { SecretStore } from '../../secrets/secretStore.js';
import { TimerStore } from '../../timers/timerStore.js';
import { Engine } from '../../worker/engine.js';
import { CommandBus } from '../../bus/commands.js';
import { Admission } from '../../concurrency/admission.js';
import { LeaseStore } from '../../concurrency/leaseStore.js';
import type { ExecutionRunner } from '../../worker/runner.js';
import { cliPrincipal } from '../../auth/principal.js';
import type { CommandRun } from '../commandTable.js';
import { withNats } from '../connect.js';
import { cliExecutors } from '../executors.js';
import { closingLine, TransitionPrinter } from '../format.js';
import { interrupt, out } from '../io.js';
import { need, parseJsonArg, positiveInt, readText } from '../args.js';

export const run: CommandRun = async ({ args, opts }) => {
  need(args, 1, 'run', '<file> [--input JSON|@file] [--id ID]');
  const definition = parseDefinition(await readText(args[0]), args[0]);
  const input = opts.input === undefined ? {} : await readInput(opts.input as string);
  return withEngine(async (engine, printer) => follow(await engine.start({ definition, input, executionId: opts.id as string | undefined }), printer));
};

export const resume: CommandRun = async ({ args, opts }) => {
  need(args, 1, 'resume', '<id> [--from-step S | --checkpoint C] [--steps FILE]');
  const steps = opts.steps === undefined ? undefined : parseDocument(await readText(opts.steps as string), opts.steps as string);
  const maxTokens = opts['max-tokens'] === undefined ? undefined : positiveInt(opts['max-tokens'] as string, '--max-tokens');
  return withEngine(async (engine, printer) => {
    printer.seed(await engine.log.read(args[0]));
    const runner = await engine.resume(args[0], {
      fromStep: opts['from-step'] as string | undefined,
      checkpointId: opts.checkpoint as string | undefined,
      steps,
      ...(maxTokens ? { budget: { maxTokens } } : {}),
    });
    return follow(runner, printer);
  });
};

export const signal: CommandRun = async ({ args, opts }) => {
  need(args, 2, 'signal', '<id> <name> [--payload JSON]');
  const payload = opts.payload === undefined ? {} : parseJsonArg(opts.payload as string, '--payload');
  return withEngine(async (engine, printer) => {
    printer.seed(await engine.log.read(args[0]));
    const runner = await engine.signal(args[0], args[1], payload);
    out(`signal '${args[1]}' delivered to ${args[0]}`);
    return runner ? follow(runner, printer) : 0;
  });
};

export const cancel: CommandRun = async ({ args }) => {
  need(args, 1, 'cancel', '<id>');
  return withEngine(async (engine) => {
    await engine.cancel(args[0], 'cancelled from the command line');
    out(`execution ${args[0]} cancelled`);
    return 0;
  });
};

/** Print transitions until the execution ends or waits; exit status from its outcome. */
async function follow(runner: ExecutionRunner, printer: TransitionPrinter): Promise<number> {
  // Sleeps are waited out here; a signal is waited for elsewhere.
  const { status, snapshot } = await runner.settled({ wakeWithinMs: Infinity });
  const id = runner.executionId;
  if (interrupt.code !== undefined) {
    out(`interrupted: the execution stays as recorded; continue it with smartspec resume ${id}`);
    return interrupt.code;
  }
  const ctx = snapshot.context;
  const phases = stepPhases(snapshot);
  const { startedAt = 0, lastAt = 0 } = printer.lines;
  const outcome = { status, ms: lastAt - startedAt, stepsDone: Object.values(phases).filter((p) => p === 'done').length, stepsTotal: ctx.definition.steps.length, tokens: ctx.usage.totalTokens };
  if (status === 'WAITING') {
    out(closingLine(outcome));
    const waiting = [...walkSteps(ctx.definition.steps)].map((v) => v.step).filter((s) => s.type === 'signal' && !stepMapHas(ctx.outputs, s.id)).map((s) => (s.type === 'signal' ? s.name ?? s.id : s.id));
    for (const name of waiting) out(`waiting for signal ${name}: smartspec signal ${id} ${name} --payload '{}'`);
    for (const [stepId, q] of Object.entries(ctx.queued ?? {})) if (phases[stepId] === 'queued') out(`step ${stepId} queued on ${q.keys.join(', ')}: a worker continues it when a slot frees`);
    if (ctx.executionQueued) out(`queued on ${ctx.executionQueued.keys.join(', ')}: a worker continues it when a slot frees`);
    return 0;
  }
  out(`outputs: ${JSON.stringify(stepMapToObject(ctx.outputs), null, 2)}`);
  if (status === 'FAILED') {
    const failed = Object.entries(phases).find(([, p]) => p === 'failed')?.[0];
    out(`error: ${ctx.error?.message}`);
    out(failed ? `resume with: smartspec resume ${id} --from-step ${failed} [--steps corrected.json]` : `resume with: smartspec resume ${id}`);
  }
  out(closingLine(outcome));
  return status === 'COMPLETED' ? 0 : 1;
}

async function withEngine(fn: (engine: Engine, printer: TransitionPrinter) => Promise<number>): Promise<number> {
  return withNats(async ({ nc, replicas }) => {
    const printer = new TransitionPrinter(out);
    const index = await ExecutionIndex.open(nc, replicas);
    // Timers go to the shared store too: a worker fires those of an execution this command leaves waiting.
    // Concurrency and rate keys are shared with the workers; a wake for a step this command leaves queued goes to one of them.
    const bus = await CommandBus.open(nc, { replicas });
    const admission = new Admission(await LeaseStore.open(nc, replicas), (w, key, msgId) => bus.publish('wake', { executionId: w.executionId, key, holder: w.id }, msgId), {
      onError: (e, what) => process.stderr.write(`warning: ${what}: ${(e as Error).message}\n`),
    });
    const engine = await Engine.create({
      admission,
      nc,
      log: await EventLog.open(nc, { replicas }),
      snapshots: await SnapshotStore.open(nc, replicas),
      timers: await TimerStore.open(nc, replicas),
      index,
      // `workflow` steps run their registered child here, as they would on a worker.
      registry: await WorkflowRegistry.open(nc, replicas),
      executors: cliExecutors(),
      secrets: await SecretStore.open(nc),
      principal: cliPrincipal(),
      owner: `smartspec-cli pid ${process.pid} on ${hostname()}`,
      onRecord: (r, s) => printer.line(r, s),
      onError: (e, what) => process.stderr.write(`warning: ${what}: ${(e as Error).message}\n`),
    });
    interrupt.onInterrupt = () => engine.close();
    try {
      return await fn(engine, printer);
    } finally {
      await engine.close();
      await admission.close();
      await index.flush(); // the last status reaches the index before NATS closes
      index.close();
    }
  });
}

/** `--input JSON`, or `--input @file` with a JSON or YAML file. */
async function readInput(arg: string): Promise<unknown> {
  if (!arg.startsWith('@')) return parseJsonArg(arg, '--input');
  const path = arg.slice(1);
  const text = await readText(path);
  try {
    return parseDocument(text, path);
  } catch (e) {
    throw new InvalidInputError(`--input ${e instanceof DefinitionError ? e.issues[0].message : (e as Error).message}`);
  }
}
