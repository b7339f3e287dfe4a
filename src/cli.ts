/**
 * `smartspec`: the command line. A composition root: it wires NATS (embedded
 * or NATS_URL), the event log and the engine, and prints what happens.
 */
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parseDefinition, parseDocument } from './definition/validate.js';
import { DefinitionError, ExecutionNotFoundError, InvalidInputError, SmartSpecError } from './errors.js';
import type { StoredRecord } from './log/records.js';
import { EventLog } from './log/eventLog.js';
import { SnapshotStore } from './log/snapshots.js';
import { payloadLimitsFromEnv } from './payloads/config.js';
import { PayloadStore } from './payloads/store.js';
import { replayWithPayloads } from './payloads/verify.js';
import { listCheckpoints, loadExecution, summarize } from './log/views.js';
import { openNats, type NatsHandle } from './nats/embedded.js';
import { Engine } from './worker/engine.js';
import { TimerStore } from './timers/timerStore.js';
import { stepMapHas, stepMapToObject } from '../machines/stepMap.js';
import type { ExecutionRunner } from './worker/runner.js';
import { stateText, TransitionPrinter } from './cli/format.js';
import { cliExecutors } from './cli/executors.js';
import { runService } from './cli/service.js';
import { natsCommand } from './cli/natsCommand.js';
import { reconcileReplicas, replicasFromEnv } from './nats/replicas.js';
import { parseDuration } from './limits.js';
import { purgeEndedExecutions } from './retention/purge.js';
import { SecretStore } from './secrets/secretStore.js';
import { secretsCommand } from './cli/secretsCommand.js';
import { schedulesCommand } from './cli/schedulesCommand.js';
import { KeyStore, viewOf } from './auth/keys.js';
import { cliPrincipal, parseScopes, type Scope } from './auth/principal.js';

const USAGE = `smartspec — durable workflows on NATS JetStream

  smartspec run <file> [--input JSON|@file] [--id ID]   start a workflow and follow it
  smartspec status <id> [--json]                         status, state, step outputs
  smartspec events <id> [--from SEQ] [--json]            the event log
  smartspec checkpoints <id> [--json]                    step-boundary checkpoints
  smartspec resume <id> [--from-step S | --checkpoint C] [--steps FILE] [--max-tokens N]
  smartspec replay <id> [--json]                         verify the hash chain and re-derive every state
  smartspec signal <id> <name> [--payload JSON]          deliver a signal to a waiting step
  smartspec cancel <id>                                  cancel a running or waiting execution
  smartspec purge --older-than 30d [--dry-run] [--json]  purge executions that ended longer ago than that
  smartspec secrets set <NAME> | list | rm <NAME>        secrets for {{secrets.NAME}} (set reads the value from stdin)
  smartspec schedules create --workflow W (--cron EXPR [--timezone TZ] | --every 15m) [--input JSON] [--catchup none|last|all]
  smartspec schedules list | show <id> | pause <id> | resume <id> | trigger <id> | rm <id>
  smartspec serve [--insecure]                           HTTP edge + worker in one process (PORT, default 3000)
  smartspec edge [--insecure] | smartspec worker         the edge or a worker alone (run several against one NATS)
  smartspec nats status | smartspec nats stop            the embedded nats-server of the data folder
  smartspec keys create --tenant T --scopes read,write [--name N]   make an API key (printed once)
  smartspec keys list [--json]                           API keys (ids, tenants, scopes; never the keys)
  smartspec keys revoke <keyId>                          stop a key working, on every edge within a second

Without any API key the edge is open and listens on 127.0.0.1 only; --insecure
(SMARTSPEC_INSECURE=true) lets it listen elsewhere anyway. README, "Security".

NATS: NATS_URL, or (unset) an embedded nats-server with its data in ./smartspec-data,
shared by the commands of that folder and stopped when the last of them ends.`;

/** Output into a closed pipe (`| head -1`) is dropped, quietly; the command still finishes its work. */
let stdoutClosed = false;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  stdoutClosed = true;
});
process.stderr.on('error', () => undefined); // nowhere left to report it
const out = (s: string) => { if (!stdoutClosed) process.stdout.write(s + '\n'); };

/** Set by SIGINT (130) or SIGTERM (143): the code the command exits with. */
let interruptedWith: number | undefined;
/** What an interrupt stops first: the engine, when the command hosts an execution. */
let onInterrupt: (() => Promise<void>) | undefined;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'schedules') return withNats(({ nc, replicas }) => schedulesCommand(argv.slice(1), nc, replicas, out));
  const { values: opts, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      input: { type: 'string' },
      id: { type: 'string' },
      json: { type: 'boolean', default: false },
      from: { type: 'string' },
      'from-step': { type: 'string' },
      checkpoint: { type: 'string' },
      steps: { type: 'string' },
      'max-tokens': { type: 'string' },
      payload: { type: 'string' },
      'older-than': { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      tenant: { type: 'string' },
      scopes: { type: 'string' },
      name: { type: 'string' },
      insecure: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [command, ...args] = positionals;
  if (!command || opts.help) { out(USAGE); return command ? 0 : 2; }
  const need = (n: number, what: string) => {
    if (args.length < n) throw new InvalidInputError(`usage: smartspec ${command} ${what}`);
  };

  switch (command) {
    case 'run': {
      need(1, '<file> [--input JSON]');
      const definition = parseDefinition(await readText(args[0]), args[0]);
      const input = opts.input === undefined ? {} : await readInput(opts.input);
      return withEngine(async (engine) => {
        return follow(await engine.start({ definition, input, executionId: opts.id }));
      });
    }
    case 'resume': {
      need(1, '<id> [--from-step S | --checkpoint C] [--steps FILE]');
      const steps = opts.steps === undefined ? undefined : parseDocument(await readText(opts.steps), opts.steps);
      const maxTokens = opts['max-tokens'] === undefined ? undefined : positiveInt(opts['max-tokens'], '--max-tokens');
      return withEngine(async (engine) => {
        const runner = await engine.resume(args[0], {
          fromStep: opts['from-step'],
          checkpointId: opts.checkpoint,
          steps,
          ...(maxTokens ? { budget: { maxTokens } } : {}),
        });
        return follow(runner);
      });
    }
    case 'signal': {
      need(2, '<id> <name> [--payload JSON]');
      const payload = opts.payload === undefined ? {} : parseJsonArg(opts.payload, '--payload');
      return withEngine(async (engine) => {
        const runner = await engine.signal(args[0], args[1], payload);
        out(`signal '${args[1]}' delivered to ${args[0]}`);
        return runner ? follow(runner) : 0;
      });
    }
    case 'cancel': {
      need(1, '<id>');
      return withEngine(async (engine) => {
        await engine.cancel(args[0], 'cancelled from the command line');
        out(`execution ${args[0]} cancelled`);
        return 0;
      });
    }
    case 'status': case 'events': case 'checkpoints': case 'replay': {
      need(1, '<id>');
      return withLog(async (log, payloads) => {
        if (command === 'replay') return replay(await log.read(args[0]), args[0], opts.json, payloads);
        if (command === 'events') {
          const from = opts.from === undefined ? 0 : positiveInt(opts.from, '--from');
          const records = await log.read(args[0], from);
          if (records.length === 0 && !(await log.last(args[0]))) throw new ExecutionNotFoundError(args[0]);
          if (opts.json) out(JSON.stringify(records.map((r) => ({ seq: r.seq, ...r.record })), null, 2));
          else for (const r of records) out(`#${String(r.seq).padEnd(5)} ${r.record.at}  ${r.record.type.padEnd(18)} ${'stepId' in r.record && r.record.stepId ? r.record.stepId : ''}  ${stateText(r.record.state)}`);
          return 0;
        }
        const loaded = await loadExecution(log, args[0]);
        if (command === 'status') {
          const s = (await payloads.resolveDeep(summarize(loaded))) as ReturnType<typeof summarize>; // values kept by reference, read back
          if (opts.json) out(JSON.stringify(s, null, 2));
          else {
            out(`${s.executionId}  ${s.workflowId}  ${s.status}  ${stateText(s.state)}`);
            for (const [id, st] of Object.entries(s.steps)) out(`  ${id.padEnd(16)} ${st.phase.padEnd(8)} ${st.output !== undefined ? JSON.stringify(st.output).slice(0, 100) : ''}${st.error ? ` ✗ ${(st.error as { message: string }).message}` : ''}`);
            if (s.error) out(`error: ${(s.error as { message: string }).message}`);
          }
          return 0;
        }
        const cps = listCheckpoints(loaded.records);
        if (opts.json) out(JSON.stringify(cps, null, 2));
        else for (const c of cps) out(`${c.id.padEnd(10)} ${c.at}  ${c.type.padEnd(16)} ${c.stepId ?? (c.type === 'ExecutionStarted' ? '(start)' : c.type === 'ExecutionResumed' ? '(resumed)' : '')}`);
        return 0;
      });
    }
    case 'nats':
      return natsCommand(args[0], out, (s) => process.stderr.write(s + '\n'));
    case 'purge': {
      const olderThan = opts['older-than'];
      if (olderThan === undefined) throw new InvalidInputError('usage: smartspec purge --older-than DURATION (e.g. 30d, 12h, 90m) [--dry-run] [--json]');
      const olderThanMs = parseDuration(olderThan);
      if (olderThanMs === undefined) throw new InvalidInputError(`--older-than must be a duration such as 30d, 12h, 90m or 45s, got '${olderThan}'`);
      return withNats(async ({ nc }) => {
        const verb = opts['dry-run'] ? 'would purge' : 'purged';
        const report = await purgeEndedExecutions(nc, {
          olderThanMs,
          dryRun: opts['dry-run'],
          onPurged: (p) => { if (!opts.json) out(`${verb} ${p.executionId}  ${p.status}  ended ${p.endedAt}  (${p.records} records)`); },
        });
        if (opts.json) out(JSON.stringify(report, null, 2));
        else out(`${verb} ${report.purged.length} execution${report.purged.length === 1 ? '' : 's'} that ended before ${report.cutoff}; ${report.kept} kept (not ended, or more recent)`);
        return 0;
      });
    }
    case 'secrets': {
      need(1, 'set <NAME> (value on stdin) | list | rm <NAME>');
      return withNats(async ({ nc }) => secretsCommand(await SecretStore.open(nc), args, out));
    }
    case 'keys': {
      const [action, keyId] = args;
      return withNats(async ({ nc }) => {
        const keys = await KeyStore.open(nc);
        if (action === 'create') {
          if (!opts.tenant) throw new InvalidInputError('usage: smartspec keys create --tenant T --scopes read,write [--name N]');
          const scopes = parseScopesArg(opts.scopes ?? '');
          const { key, record } = await keys.create({ tenant: opts.tenant, scopes, name: opts.name });
          if (opts.json) out(JSON.stringify({ key, ...viewOf(record) }, null, 2));
          else out(`${key}\nkey id ${record.keyId}, tenant ${record.tenant}, scopes ${record.scopes.join(',')}\nstore the key now: it is shown only this once (only its hash is kept)`);
          return 0;
        }
        if (action === 'list') {
          const all = (await keys.list()).map(viewOf);
          if (opts.json) out(JSON.stringify(all, null, 2));
          else for (const k of all) out(`${k.keyId}  ${k.tenant.padEnd(16)} ${k.scopes.join(',').padEnd(22)} ${k.createdAt}${k.revokedAt ? `  revoked ${k.revokedAt}` : ''}${k.name ? `  ${k.name}` : ''}`);
          return 0;
        }
        if (action === 'revoke' && keyId) {
          const revoked = await keys.revoke(keyId);
          out(`key ${revoked.keyId} (tenant ${revoked.tenant}) revoked at ${revoked.revokedAt}`);
          return 0;
        }
        throw new InvalidInputError('usage: smartspec keys create --tenant T --scopes read,write | keys list | keys revoke <keyId>');
      });
    }
    case 'serve': case 'edge': case 'worker': {
      await runService({ edge: command !== 'worker', worker: command !== 'edge' }, opts.insecure ? { ...process.env, SMARTSPEC_INSECURE: 'true' } : process.env);
      return new Promise<number>(() => undefined); // serves until a signal stops it
    }
    default:
      throw new InvalidInputError(`unknown command '${command}'\n${USAGE}`);
  }
}

/** Verify the hash chain and re-derive every state; exit 0 only when the whole history verifies. */
async function replay(records: StoredRecord[], executionId: string, json: boolean, payloads: PayloadStore): Promise<number> {
  if (records.length === 0) throw new ExecutionNotFoundError(executionId);
  const report = await replayWithPayloads(executionId, records, payloads);
  if (json) out(JSON.stringify(report, null, 2));
  else {
    for (const e of report.events) out(`#${String(e.seq).padEnd(5)} ${e.type.padEnd(18)} ${e.ok ? 'ok  ' : 'FAIL'} ${e.ok ? stateText(e.recomputed) : e.error}`);
    for (const p of report.payloads) if (!p.ok) out(`#${String(p.seq).padEnd(5)} stored value FAIL ${p.error}`);
    for (const b of report.chainBreaks) out(`hash chain broken at #${b.seq}: recorded ${b.found.slice(0, 12)}…, computed ${b.expected.slice(0, 12)}…`);
    if (report.principals === 'absent') out('note: this log names no principals (it was written before they were recorded)');
    out(report.ok ? `replay verified ${report.events.length} events` : 'replay FAILED: the log does not verify');
  }
  return report.ok ? 0 : 1;
}

/** Print transitions until the execution ends or waits; exit status from its outcome. */
async function follow(runner: ExecutionRunner): Promise<number> {
  // Sleeps are waited out here; a signal is waited for elsewhere.
  const { status, snapshot } = await runner.settled({ wakeWithinMs: Infinity });
  if (interruptedWith !== undefined) {
    out(`interrupted: the execution stays as recorded; continue it with smartspec resume ${runner.executionId}`);
    return interruptedWith;
  }
  const ctx = snapshot.context;
  out(`status: ${status}`);
  if (status === 'WAITING') {
    const waiting = ctx.definition.steps.filter((s) => s.type === 'signal' && !stepMapHas(ctx.outputs, s.id)).map((s) => (s.type === 'signal' ? s.name ?? s.id : s.id));
    out(`waiting for signal ${waiting.join(', ')}: smartspec signal ${runner.executionId} <name> --payload JSON`);
    return 0;
  }
  out(`outputs: ${JSON.stringify(stepMapToObject(ctx.outputs), null, 2)}`);
  if (status === 'FAILED') out(`error: ${ctx.error?.message}\nresume with: smartspec resume ${runner.executionId} --from-step <step> [--steps corrected.json]`);
  return status === 'COMPLETED' ? 0 : 1;
}

async function withNats<T>(fn: (h: NatsHandle & { replicas: number }) => Promise<T>): Promise<T> {
  const replicas = replicasFromEnv();
  const handle = await openNats(`smartspec-cli:${process.pid}`, process.env, process.argv.slice(2).join(' '));
  const onSignal = (signal: NodeJS.Signals) => {
    if (interruptedWith !== undefined) process.exit(interruptedWith); // a second Ctrl-C: at once
    interruptedWith = signal === 'SIGINT' ? 130 : 143;
    // A hosted execution is stopped (it stays as recorded) and the command unwinds, releasing
    // NATS; anything else has nothing to finish. Either way, never hang on the way out.
    const stopping = onInterrupt?.() ?? Promise.resolve();
    void stopping.finally(() => setTimeout(() => void handle.close().finally(() => process.exit(interruptedWith)), onInterrupt ? 5000 : 0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (replicas !== undefined) await reconcileReplicas(handle.nc, replicas, (m) => process.stderr.write(`note: ${m}\n`));
    return await fn({ ...handle, replicas: replicas ?? 1 });
  } finally {
    await handle.close();
  }
}

async function withLog(fn: (log: EventLog, payloads: PayloadStore) => Promise<number>): Promise<number> {
  return withNats(async ({ nc, replicas }) => fn(await EventLog.open(nc, { replicas }), new PayloadStore(nc, { limits: payloadLimitsFromEnv(), replicas })));
}

async function withEngine(fn: (engine: Engine) => Promise<number>): Promise<number> {
  return withNats(async ({ nc, replicas }) => {
    const printer = new TransitionPrinter(out);
    // Timers go to the shared store too: a worker fires those of an execution this command leaves waiting.
    const engine = await Engine.create({ nc, log: await EventLog.open(nc, { replicas }), snapshots: await SnapshotStore.open(nc, replicas), timers: await TimerStore.open(nc, replicas), executors: cliExecutors(), secrets: await SecretStore.open(nc), principal: cliPrincipal(), owner: `smartspec-cli pid ${process.pid} on ${hostname()}`, onRecord: (r, s) => printer.line(r, s) });
    onInterrupt = () => engine.close();
    try {
      return await fn(engine);
    } finally {
      await engine.close();
    }
  });
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

/** `--input JSON`, or `--input @file` with a JSON or YAML file. */
async function readInput(arg: string): Promise<unknown> {
  if (!arg.startsWith('@')) return parseJsonArg(arg, '--input');
  const path = arg.slice(1);
  const text = await readText(path);
  try {
    return parseDocument(text, path);
  } catch (err) {
    throw new InvalidInputError(`--input ${err instanceof DefinitionError ? err.issues[0].message : (err as Error).message}`);
  }
}

function parseJsonArg(text: string, flag: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`${flag} is not valid JSON: ${(err as Error).message}`);
  }
}

function parseScopesArg(text: string): Scope[] {
  try {
    return parseScopes(text);
  } catch (err) {
    throw new InvalidInputError(`--scopes: ${(err as Error).message}`);
  }
}

function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new InvalidInputError(`${flag} must be a whole number, got '${text}'`);
  return n;
}

main(process.argv.slice(2)).then(
  // A large output to a pipe is still being written: exit once it is out, not cut short.
  (code) => process.stdout.write('', () => process.exit(interruptedWith ?? code)),
  (err) => {
    if (err instanceof DefinitionError) {
      process.stderr.write(`error: invalid definition\n${err.issues.map((i) => `  ${i.path}: ${i.message}`).join('\n')}\n`);
    } else if (err instanceof SmartSpecError) {
      process.stderr.write(`error: ${err.message}\n`);
    } else {
      process.stderr.write(`error: ${(err as Error).message ?? err}\n`);
    }
    process.exit(2);
  },
);
