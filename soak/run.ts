/**
 * `npm run soak -- --minutes N [--seed S]` (issue 9): the service under chaos
 * for N minutes, then an audit. Not part of `npm test`.
 *
 * Real processes only: a nats-server (temp file store, free loopback port), an
 * edge and 3 workers (`node bin/smartspec.mjs edge|worker`, NATS_URL pointing
 * at it), and a local HTTP server that counts the side effects of the http
 * steps. A steady stream of mixed executions goes to the edge over HTTP
 * (soak/workloads.ts); a worker is SIGKILLed and restarted every ~10 s, the
 * nats-server every ~45 s (same port, same store). Then the chaos stops, the
 * soak waits (bounded) until no execution is still going, audits every
 * history, prints a table and exits 1 if any must-be-0 row is not 0.
 * All traffic stays on 127.0.0.1.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { LogRecord } from '../src/log/records.js';
import { replayExecution } from '../src/log/replay.js';
import { auditEffects, interruptedAttempts, type HistoryEvent, type StepEffects } from './audit.js';
import { EdgeClient, eachLimited } from './client.js';
import { CliProcess, NatsProcess, freePort } from './processes.js';
import { compactHistory, renderTable, tally, type Row } from './report.js';
import { createRng, type Rng } from './rng.js';
import { startSideEffectServer, type SideEffectServer } from './sideEffects.js';
import { WORKLOADS, type Definition, type Workload } from './workloads.js';

// ---------------------------------------------------------------- options

interface Options {
  minutes: number;
  seed: number;
  /** Submissions per second. */
  rate: number;
  workers: number;
  workerKillEverySec: number;
  natsKillEverySec: number;
  /** Bound on the wait for quiescence after the chaos stops. */
  drainSec: number;
  ackWaitMs: number;
  keep: boolean;
}

class UsageError extends Error {}

const USAGE = `usage: npm run soak -- [--minutes N] [--seed S] [--rate R] [--workers W]
          [--worker-kill-every SEC] [--nats-kill-every SEC] [--drain SEC] [--ack-wait-ms MS] [--keep]
  --minutes            how long the chaos lasts; fractions allowed (default 2)
  --seed               seed of the soak's own choices (default: from the clock, printed)
  --rate               submissions per second (default 3)
  --workers            worker processes (default 3)
  --worker-kill-every  seconds between worker SIGKILLs, ±30 % (default 10; 0: never)
  --nats-kill-every    seconds between nats-server SIGKILLs, ±15 % (default 45; 0: never)
  --drain              longest wait for quiescence after the chaos, in seconds (default 120)
  --ack-wait-ms        the workers' ACK_WAIT_MS (default 3000)
  --keep               keep the run's folder (store and logs); it is always kept when the soak fails`;

export function parseOptions(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        minutes: { type: 'string' }, seed: { type: 'string' }, rate: { type: 'string' }, workers: { type: 'string' },
        'worker-kill-every': { type: 'string' }, 'nats-kill-every': { type: 'string' }, drain: { type: 'string' },
        'ack-wait-ms': { type: 'string' }, keep: { type: 'boolean' }, help: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) throw new UsageError('');
  const num = (name: string, raw: string | undefined, dflt: number, min: number, max: number, integer = false) => {
    if (raw === undefined) return dflt;
    const v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got '${raw}'`);
    }
    return v;
  };
  return {
    minutes: num('minutes', values.minutes, 2, 0.05, 24 * 60),
    seed: num('seed', values.seed, Date.now() % 2 ** 31, 0, 2 ** 32 - 1, true),
    rate: num('rate', values.rate, 3, 0.1, 200),
    workers: num('workers', values.workers, 3, 1, 16, true),
    workerKillEverySec: num('worker-kill-every', values['worker-kill-every'], 10, 0, 3600),
    natsKillEverySec: num('nats-kill-every', values['nats-kill-every'], 45, 0, 3600),
    drainSec: num('drain', values.drain, 120, 5, 3600),
    ackWaitMs: num('ack-wait-ms', values['ack-wait-ms'], 3000, 200, 600_000, true),
    keep: values.keep ?? false,
  };
}

// ---------------------------------------------------------------- state

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
const MAX_SUBMISSIONS_IN_FLIGHT = 16;
const SIGNAL_TRIES = 30;

interface SignalDelivery { name: string; state: 'scheduled' | 'sent' | 'gave-up'; tries: number; last?: string }

interface Execution {
  id: string;
  workload: Workload;
  definition: Definition;
  /** Last status the edge reported (GET /executions/:id). */
  status?: string;
  error?: { code?: string; message?: string };
  notFound?: boolean;
  signals: SignalDelivery[];
}

type Outcome = 'completed' | 'failedAsExpected' | 'unexpected' | 'stuck' | 'lost';

interface Audit {
  execution: Execution;
  outcome: Outcome;
  events?: (HistoryEvent & Record<string, unknown>)[];
  replayProblem?: string;
  effects: StepEffects[];
  /** Attempts of non-signal steps cut off by a crash and run again. */
  interrupted: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const now = () => Date.now();

/** Sleep until `ms` have passed or `deadline`, whichever is first; false when the deadline came first. */
async function sleepBefore(ms: number, deadline: number): Promise<boolean> {
  const end = now() + ms;
  await sleep(Math.min(end, deadline) - now());
  return end <= deadline;
}

// ---------------------------------------------------------------- the run

export async function main(argv: string[]): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      if (!err.message) process.stdout.write(`${USAGE}\n`);
      else process.stderr.write(`soak: ${err.message}\n${USAGE}\n`);
      return err.message ? 2 : 0;
    }
    throw err;
  }
  const o = options;
  const started = now();
  const say = (line: string) => process.stdout.write(`[${String(Math.round((now() - started) / 1000)).padStart(4)}s] ${line}\n`);
  const dir = await mkdtemp(join(tmpdir(), 'smartspec-soak-'));
  say(`seed ${o.seed}; ${o.minutes} min of chaos at ${o.rate} submissions/s, ${o.workers} workers; run folder ${dir}`);

  // Separate streams, so the mix does not depend on when the chaos happens to draw.
  const mixRng = createRng(o.seed);
  const chaosRng = createRng(o.seed ^ 0x9e3779b9);

  let effects: SideEffectServer | undefined;
  let nats: NatsProcess | undefined;
  let edgeProc: CliProcess | undefined;
  const workers: CliProcess[] = [];
  const killEverything = () => { edgeProc?.killNow(); for (const w of workers) w.killNow(); nats?.killNow(); };
  process.once('exit', killEverything);
  const onSignal = () => { killEverything(); process.exit(130); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // However the run goes, it ends: the chaos, the drain and the audit are each bounded; this is the backstop.
  const watchdog = setTimeout(() => {
    process.stderr.write(`soak: still running ${Math.round((now() - started) / 1000)} s after start; giving up (run folder ${dir})\n`);
    killEverything();
    process.exit(3);
  }, (o.minutes * 60 + o.drainSec + 600) * 1000);
  watchdog.unref();

  let failed = true;
  try {
    effects = await startSideEffectServer();
    nats = await NatsProcess.start(join(dir, 'store'), dir);
    const edgePort = await freePort();
    // The side-effect server is on loopback, which the outbound policy refuses unless allowed.
    const common = { NATS_URL: nats.url, ACK_WAIT_MS: String(o.ackWaitMs), LOG_LEVEL: 'info', HTTP_STEP_ALLOW: '127.0.0.1' };
    edgeProc = new CliProcess('edge', 'edge', { ...common, PORT: String(edgePort), RATE_LIMIT_MAX: '1000000' }, dir, /edge listening/);
    for (let i = 1; i <= o.workers; i++) workers.push(new CliProcess(`worker${i}`, 'worker', common, dir, /worker consuming commands/));
    await Promise.all([edgeProc.start(), ...workers.map((w) => w.start())]);
    const edge = new EdgeClient(`http://127.0.0.1:${edgePort}`);
    say(`nats-server ${nats.url}, edge ${edge.base}, side effects ${effects.base}`);


    const result = await soak(o, { edge, edgeProc, effects, nats, workers, mixRng, chaosRng, say });
    const rows = await auditAndReport(o, edge, effects, result, dir, say);

    // Stopped as an operator would (SIGTERM); one that ignores it is killed after 10 s.
    const services = [edgeProc, ...workers];
    const graceful = await Promise.all(services.map((p) => p.stop()));
    const crashes = services.flatMap((p) => p.crashes);
    rows.push(
      { label: 'processes that exited by themselves', value: crashes.length, mustBeZero: true, note: crashes.length ? `${tally(crashes.map((c) => c.replace(/ at .*/, '')))} (restarted by the soak)` : '' },
      { label: 'needed SIGKILL after SIGTERM', value: graceful.filter((g) => !g).length, note: `informational: ${services.filter((_, i) => !graceful[i]).map((p) => p.name).join(', ') || 'all'}${graceful.every(Boolean) ? ' stopped within 10 s of SIGTERM' : ' did not stop within 10 s of SIGTERM'}` },
    );
    failed = rows.some((r) => r.mustBeZero && r.value !== 0);
    process.stdout.write(`\n${renderTable(rows)}\n\nworkloads: ${WORKLOADS.map((w) => w.kind).join(', ')}\n`);
    process.stdout.write(failed ? `\nSOAK FAILED (seed ${o.seed}); logs and store kept in ${dir}\n` : `\nsoak passed (seed ${o.seed})\n`);
    return failed ? 1 : 0;
  } catch (err) {
    process.stderr.write(`soak: could not run: ${(err as Error).stack ?? err}\nlogs in ${dir}\n`);
    return 2;
  } finally {
    clearTimeout(watchdog);
    await Promise.all([edgeProc?.stop(), ...workers.map((w) => w.stop())]);
    await nats?.stop().catch(() => undefined);
    await effects?.close();
    await Promise.all([edgeProc?.closeLog(), ...workers.map((w) => w.closeLog())]);
    if (!failed && !o.keep) await rm(dir, { recursive: true, force: true });
    process.removeListener('exit', killEverything);
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

interface SoakParts {
  edge: EdgeClient;
  edgeProc: CliProcess;
  effects: SideEffectServer;
  nats: NatsProcess;
  workers: CliProcess[];
  mixRng: Rng;
  chaosRng: Rng;
  say: (line: string) => void;
}

interface SoakResult {
  executions: Execution[];
  refused: string[];
  unanswered: string[];
  busySkips: number;
  workerKills: number;
  natsKills: number;
  restartFailures: string[];
}

async function soak(o: Options, p: SoakParts): Promise<SoakResult> {
  const { edge, edgeProc, effects, nats, workers, mixRng, chaosRng, say } = p;
  const executions: Execution[] = [];
  const refused: string[] = [];
  const unanswered: string[] = [];
  const restartFailures: string[] = [];
  const deliveries = new Set<Promise<void>>();
  let busySkips = 0;
  let workerKills = 0;
  let natsKills = 0;
  const chaosEnd = now() + o.minutes * 60_000;

  const progress = () => {
    const ended = executions.filter((e) => e.status && TERMINAL.has(e.status));
    const sent = executions.flatMap((e) => e.signals).filter((s) => s.state === 'sent').length;
    say(
      `submitted ${executions.length} (refused ${refused.length}, unanswered ${unanswered.length}) · ended ${ended.length} ` +
        `(${tally(ended.map((e) => e.status!)) || 'none'}) · open ${executions.length - ended.length} · signals sent ${sent} · ` +
        `kills: worker ${workerKills}, nats ${natsKills} · side effects ${effects.total()}`,
    );
  };
  const ticker = setInterval(progress, 10_000);

  const deliver = async (e: Execution, d: SignalDelivery, afterMs: number) => {
    await sleep(afterMs);
    for (d.tries = 1; d.tries <= SIGNAL_TRIES; d.tries++) {
      const r = await edge.request('POST', `/executions/${e.id}/signals/${d.name}`, { by: 'soak' });
      if (r.status === 202 || (r.status === 409 && /already delivered/.test(r.json?.detail ?? ''))) { d.state = 'sent'; return; }
      d.last = `${r.status} ${r.json?.code ?? r.text.slice(0, 120)}`;
      // Not started yet (404), NATS down (503), no answer (0): try again. Anything else will not change.
      if (![0, 404, 500, 502, 503, 504].includes(r.status)) break;
      await sleep(1000);
    }
    d.state = 'gave-up';
  };

  const submitOne = async (n: number) => {
    // Every random choice is drawn before the first await: the sequence depends on the seed only.
    const workload = mixRng.weighted(WORKLOADS);
    const definition = workload.definition(mixRng, effects.base);
    const plans = workload.signals?.(mixRng) ?? [];
    const id = `soak-${n}-${workload.kind}`;
    const r = await edge.request('POST', '/executions', { executionId: id, definition, input: { n } });
    if (r.status === 202) {
      const e: Execution = { id, workload, definition, signals: plans.map((pl) => ({ name: pl.name, state: 'scheduled', tries: 0 })) };
      executions.push(e);
      plans.forEach((pl, i) => {
        const d = deliver(e, e.signals[i], pl.afterMs).finally(() => deliveries.delete(d));
        deliveries.add(d);
      });
    } else if (r.status === 0) {
      unanswered.push(id);
    } else {
      refused.push(`${r.status} ${r.json?.code ?? ''}`.trim());
    }
  };

  const submitLoop = async () => {
    const inFlight = new Set<Promise<void>>();
    for (let n = 1; await sleepBefore(mixRng.between(0.5, 1.5) * (1000 / o.rate), chaosEnd); n++) {
      if (inFlight.size >= MAX_SUBMISSIONS_IN_FLIGHT) { busySkips++; continue; }
      const s = submitOne(n).finally(() => inFlight.delete(s));
      inFlight.add(s);
    }
    await Promise.all(inFlight);
  };

  /** Start a process again; a start can fail while NATS is down, so retry a few times. */
  const restart = async (w: CliProcess) => {
    for (let i = 1; i <= 5; i++) {
      try { return await w.start(); } catch (err) {
        restartFailures.push(`${w.name}: ${(err as Error).message.split('\n')[0].slice(0, 200)}`);
        await sleep(2000);
      }
    }
  };

  const workerChaos = async () => {
    if (o.workerKillEverySec === 0) return;
    while (await sleepBefore(chaosRng.between(0.7, 1.3) * o.workerKillEverySec * 1000, chaosEnd)) {
      const victim = chaosRng.pick(workers);
      const pause = chaosRng.int(300, 1500);
      if (!victim.running) continue;
      await victim.kill('SIGKILL');
      workerKills++;
      await sleep(pause);
      await restart(victim);
    }
  };

  const natsChaos = async () => {
    if (o.natsKillEverySec === 0) return;
    while (await sleepBefore(chaosRng.between(0.85, 1.15) * o.natsKillEverySec * 1000, chaosEnd)) {
      const pause = chaosRng.int(1000, 3000);
      await nats.kill();
      natsKills++;
      say(`nats-server SIGKILLed; back in ${pause} ms`);
      await sleep(pause);
      await nats.restart();
    }
  };

  /** A process that crashed on its own is started again (its crash is reported at the end). */
  const supervise = async () => {
    while (await sleepBefore(2000, chaosEnd)) {
      await Promise.all([edgeProc, ...workers].filter((w) => w.crashed && !w.running).map(restart));
    }
  };

  /** Keep the statuses of running executions roughly current (for the progress line and a shorter drain). */
  const poller = async () => {
    while (await sleepBefore(5000, chaosEnd)) {
      const open = executions.filter((e) => !e.status || !TERMINAL.has(e.status)).slice(0, 50);
      await refresh(edge, open);
    }
  };

  try {
    await Promise.all([submitLoop(), workerChaos(), natsChaos(), poller(), supervise()]);
    say('chaos over; every process is brought back up and the soak waits for quiescence');
    if (!nats.running) await nats.restart();
    await Promise.all([edgeProc, ...workers].filter((w) => !w.running).map(restart));
    await Promise.all(deliveries);

    // Quiescence: nothing open, or nothing RUNNING/PENDING, no status change for a while (longer than a
    // redelivery), and every WAITING execution's longest step timeout over. Bounded by --drain either way.
    const drainStart = now();
    const drainEnd = drainStart + o.drainSec * 1000;
    const quietMs = Math.max(15_000, 3 * o.ackWaitMs);
    let lastChange = now();
    for (;;) {
      const open = executions.filter((e) => !e.status || !TERMINAL.has(e.status));
      if (open.length === 0) break;
      if (await refresh(edge, open)) lastChange = now();
      const still = open.filter((e) => !e.status || !TERMINAL.has(e.status));
      const quiet = now() - lastChange >= quietMs
        && still.every((e) => e.status === 'WAITING' && now() >= drainStart + longestTimeoutMs(e.definition));
      if (still.length === 0 || quiet) break;
      if (!(await sleepBefore(2000, drainEnd))) break;
    }
    progress();
  } finally {
    clearInterval(ticker);
  }
  return { executions, refused, unanswered, busySkips, workerKills, natsKills, restartFailures };
}

/** Read the statuses of `list` again; true when one changed. */
async function refresh(edge: EdgeClient, list: Execution[]): Promise<boolean> {
  let changed = false;
  await eachLimited(list, 4, async (e) => {
    const r = await edge.request('GET', `/executions/${e.id}`);
    if (r.status === 200) {
      changed ||= e.status !== r.json.status;
      e.status = r.json.status;
      e.error = r.json.error;
      e.notFound = false;
    } else if (r.status === 404) {
      e.notFound = true;
    }
  });
  return changed;
}

/** The longest a step of this definition may wait before it times out (0: none has a timeout). */
function longestTimeoutMs(definition: Definition): number {
  return Math.max(0, ...definition.steps.map((s) => (typeof s.timeoutMs === 'number' ? s.timeoutMs : 0)));
}

// ---------------------------------------------------------------- the audit

function outcomeOf(e: Execution): Outcome {
  if (!e.status) return e.notFound ? 'lost' : 'stuck';
  if (!TERMINAL.has(e.status)) return 'stuck';
  const want = e.workload.expect;
  if (want.status === 'COMPLETED') return e.status === 'COMPLETED' ? 'completed' : 'unexpected';
  return e.status === 'FAILED' && e.error?.code === want.errorCode ? 'failedAsExpected' : 'unexpected';
}

type Events = (HistoryEvent & Record<string, unknown>)[];

/** An execution's history from the edge (retried while NATS may be down); undefined when it has none (404). */
async function historyOf(edge: EdgeClient, id: string): Promise<{ events: Events } | { unreadable: string } | undefined> {
  let r = await edge.request('GET', `/executions/${id}/events`);
  for (let i = 0; i < 5 && r.status !== 200 && r.status !== 404; i++) {
    await sleep(1000);
    r = await edge.request('GET', `/executions/${id}/events`);
  }
  if (r.status === 404) return undefined;
  return r.status === 200 ? { events: r.json.events as Events } : { unreadable: `${r.status} ${r.text.slice(0, 200)}` };
}

/** What replay says is wrong with a history, if anything. */
function replayProblemOf(id: string, events: Events): string | undefined {
  const report = replayExecution(id, events.map(({ seq, ...record }) => ({ seq, record: record as unknown as LogRecord })));
  if (report.ok) return undefined;
  const bad = report.events.find((x) => !x.ok);
  return report.chainBreaks.length > 0
    ? `hash chain broken at seq ${report.chainBreaks.map((b) => b.seq).join(', ')}`
    : `seq ${bad?.seq} ${bad?.type}${bad?.stepId ? `/${bad.stepId}` : ''}: ${bad?.error}`;
}

function interruptedIn(events: Events, steps: { id: string; type: string }[]): number {
  let n = 0;
  for (const k of interruptedAttempts(events, new Set(steps.filter((s) => s.type === 'signal').map((s) => s.id))).values()) n += k;
  return n;
}

async function auditOne(edge: EdgeClient, effects: SideEffectServer, e: Execution): Promise<Audit> {
  const history = await historyOf(edge, e.id);
  if (!history) return { execution: e, outcome: 'lost', effects: [], interrupted: 0 };
  const outcome = outcomeOf(e);
  if ('unreadable' in history) return { execution: e, outcome, replayProblem: `events unreadable: ${history.unreadable}`, effects: [], interrupted: 0 };
  const { events } = history;
  if (events.length === 0) return { execution: e, outcome, events, effects: [], interrupted: 0 };

  const steps = e.definition.steps as { id: string; type: string; steps?: { id: string; type: string }[] }[];
  const httpSteps = steps.filter((s) => s.type === 'http').map((s) => s.id);
  const audit: Audit = { execution: e, outcome, events, replayProblem: replayProblemOf(e.id, events), effects: auditEffects(events, effects.hitsOf(e.id), httpSteps), interrupted: interruptedIn(events, steps) };
  for (const map of steps.filter((s) => s.type === 'map')) await auditItems(edge, effects, audit, map.id, map.steps ?? []);
  return audit;
}

/**
 * A map's items are child executions: each child's history must replay, its http steps must not
 * have run more often than it records, and the output the parent recorded for the item must be
 * the child's own. Problems and effects join the parent's audit (effects named `step@child`).
 */
async function auditItems(edge: EdgeClient, effects: SideEffectServer, audit: Audit, mapId: string, block: { id: string; type: string }[]): Promise<void> {
  const events = audit.events!;
  const children = new Map<string, number>();
  const recorded = new Map<string, unknown>();
  for (const ev of events) {
    if (ev.stepId !== mapId) continue;
    for (const l of (ev.launch ?? []) as { index: number; child: string }[]) children.set(l.child, l.index);
    for (const r of (ev.results ?? []) as { child: string; output: unknown }[]) recorded.set(r.child, r.output);
  }
  const problems: string[] = [];
  const httpSteps = block.filter((s) => s.type === 'http').map((s) => s.id);
  for (const [child, index] of children) {
    const history = await historyOf(edge, child);
    if (!history || 'unreadable' in history) { problems.push(`item ${index} (${child}): history ${history ? `unreadable: ${history.unreadable}` : 'missing'}`); continue; }
    const problem = replayProblemOf(child, history.events);
    if (problem) problems.push(`item ${index} (${child}): ${problem}`);
    const end = history.events.at(-1)!;
    if (recorded.has(child) && (end.type !== 'ExecutionCompleted' || JSON.stringify(end.output) !== JSON.stringify(recorded.get(child)))) {
      problems.push(`item ${index} (${child}): the parent recorded ${JSON.stringify(recorded.get(child))}, the child ended ${end.type} ${JSON.stringify(end.output ?? null)}`);
    }
    audit.effects.push(...auditEffects(history.events, effects.hitsOf(child), httpSteps).map((s) => ({ ...s, stepId: `${s.stepId}@${child}` })));
    audit.interrupted += interruptedIn(history.events, block);
  }
  if (problems.length > 0) audit.replayProblem = [audit.replayProblem, ...problems].filter(Boolean).join('; ');
}

async function auditAndReport(o: Options, edge: EdgeClient, effects: SideEffectServer, run: SoakResult, dir: string, say: (l: string) => void): Promise<Row[]> {
  say(`auditing ${run.executions.length} histories (replay, side effects)`);
  const audits: Audit[] = [];
  await eachLimited(run.executions, 4, async (e) => { audits.push(await auditOne(edge, effects, e)); });
  audits.sort((a, b) => Number(a.execution.id.split('-')[1]) - Number(b.execution.id.split('-')[1]));

  // Submissions that got no answer but may have been published anyway.
  let unansweredStarted = 0;
  for (const id of run.unanswered) if ((await edge.request('GET', `/executions/${id}`)).status === 200) unansweredStarted++;

  const listing = await listingMismatches(edge, run.executions);
  const logNotes = await logWarnings(dir);

  const of = (o: Outcome) => audits.filter((a) => a.outcome === o);
  const stuck = of('stuck');
  const unexpected = of('unexpected');
  const nonReplaying = audits.filter((a) => a.replayProblem);
  const dupSteps = audits.flatMap((a) => a.effects.filter((s) => s.duplicated > 0).map((s) => ({ a, s })));
  const rerunEffects = audits.reduce((n, a) => n + a.effects.reduce((m, s) => m + Math.max(0, Math.min(s.hits, s.started) - s.completed - s.failed), 0), 0);
  const interrupted = audits.reduce((n, a) => n + a.interrupted, 0);
  const expectedFailures = of('failedAsExpected');
  const signals = run.executions.flatMap((e) => e.signals);

  const rows: Row[] = [
    { label: 'submitted (202)', value: run.executions.length, note: tally(run.executions.map((e) => e.workload.kind)) },
    { label: 'refused by the edge', value: run.refused.length, sub: true, note: `${tally(run.refused)}${run.refused.length ? ' (not submitted; expected while NATS is down)' : ''}` },
    { label: 'no answer', value: run.unanswered.length, sub: true, note: run.unanswered.length ? `not counted as submitted; ${unansweredStarted} of them started anyway` : '' },
    { label: 'completed', value: of('completed').length },
    { label: 'failed as expected', value: expectedFailures.length, note: tally(expectedFailures.map((a) => (a.execution.workload.expect as { why: string }).why)) },
    { label: 'unexpected outcome', value: unexpected.length, mustBeZero: true, note: tally(unexpected.map((a) => `${a.execution.workload.kind} → ${a.execution.status} ${a.execution.error?.code ?? ''}`.trim())) },
    { label: 'stuck', value: stuck.length, mustBeZero: true, note: stuck.length ? `not ended at quiescence (waited at most ${o.drainSec} s after the chaos): ${tally(stuck.map((a) => `${a.execution.workload.kind} ${a.execution.status ?? '(status unreadable)'}`))}` : '' },
    { label: 'lost', value: of('lost').length, mustBeZero: true, note: of('lost').length ? 'accepted with 202, no history and no index entry' : '' },
    { label: 'histories that do not replay', value: nonReplaying.length, mustBeZero: true },
    { label: 'side effects run twice', value: dupSteps.length, mustBeZero: true, note: dupSteps.length ? 'completed steps whose request ran more often than their recorded attempts' : '' },
    { label: 'in-flight re-runs (allowed)', value: interrupted, note: `attempts cut off by a crash and run again; ${rerunEffects} of them repeated an http request` },
    { label: 'signals sent / given up', value: signals.filter((s) => s.state === 'sent').length, note: `${signals.filter((s) => s.state !== 'sent').length} given up${signals.some((s) => s.state !== 'sent') ? `: ${tally(signals.filter((s) => s.state !== 'sent').map((s) => s.last ?? '?'))}` : ''}` },
    { label: 'listing disagrees with history', value: listing.count, note: `informational (the listing may lag)${listing.note ? `: ${listing.note}` : ''}` },
    { label: 'worker SIGKILLs', value: run.workerKills, note: run.restartFailures.length ? `restart attempts that failed: ${tally(run.restartFailures)}` : '' },
    { label: 'nats-server SIGKILLs', value: run.natsKills },
    { label: 'submissions skipped (edge slow)', value: run.busySkips, note: `more than ${MAX_SUBMISSIONS_IN_FLIGHT} submissions awaiting an answer` },
  ];

  // The evidence behind each failing row, a few executions each.
  const details: string[] = [];
  const show = (title: string, list: Audit[], line: (a: Audit) => string) => {
    if (list.length === 0) return;
    details.push(`${title} (${list.length}; first ${Math.min(5, list.length)}):`);
    for (const a of list.slice(0, 5)) details.push(`  ${a.execution.id}: ${line(a)}`);
  };
  const hist = (a: Audit) => (a.events ? compactHistory(a.events as never) : '(no history)');
  show('unexpected outcome', unexpected, (a) => `${a.execution.status} ${JSON.stringify(a.execution.error ?? null).slice(0, 300)}\n    ${hist(a)}`);
  show('stuck', stuck, (a) => `${a.execution.status ?? '?'}; signals ${JSON.stringify(a.execution.signals)}\n    ${hist(a)}`);
  show('lost', of('lost'), () => 'GET /executions/:id and /events answer 404');
  show('do not replay', nonReplaying, (a) => `${a.replayProblem}\n    ${hist(a)}`);
  show('side effects run twice', [...new Set(dupSteps.map((d) => d.a))], (a) => `${a.effects.filter((s) => s.duplicated > 0).map((s) => `${s.stepId}: ${s.hits} requests for ${s.started} StepStarted, ${s.completed} StepCompleted`).join('; ')}\n    ${hist(a)}`);
  if (details.length > 0) process.stdout.write(`\n${details.join('\n')}\n`);
  if (logNotes) process.stdout.write(`\nwarnings and errors in the service logs (${dir}):\n${logNotes}\n`);
  return rows;
}

/** Executions whose listed status is not the one their history gives (or missing from the listing). */
async function listingMismatches(edge: EdgeClient, executions: Execution[]): Promise<{ count: number; note: string }> {
  const listed = new Map<string, string>();
  const full: string[] = [];
  for (const workflowId of new Set(executions.map((e) => e.definition.id))) {
    const r = await edge.request('GET', `/executions?workflowId=${workflowId}&limit=1000`);
    if (r.status !== 200) return { count: 0, note: `listing unreadable: ${r.status}` };
    const list = r.json.executions as { executionId: string; status: string }[];
    if (list.length === 1000) full.push(workflowId);
    for (const x of list) listed.set(x.executionId, x.status);
  }
  const checked = executions.filter((e) => e.status && !full.includes(e.definition.id));
  const wrong = checked.filter((e) => listed.get(e.id) !== e.status);
  return {
    count: wrong.length,
    note: [tally(wrong.map((e) => `${listed.get(e.id) ?? 'missing'} vs ${e.status}`)), full.length ? `not checked (over 1000 listed): ${full.join(', ')}` : ''].filter(Boolean).join('; '),
  };
}

/** The warnings and errors the edge and workers logged, by message, most frequent first. */
async function logWarnings(dir: string): Promise<string> {
  const counts = new Map<string, number>();
  for (const name of ['edge', ...Array.from({ length: 16 }, (_, i) => `worker${i + 1}`)]) {
    let text: string;
    try { text = await readFile(join(dir, `${name}.log`), 'utf8'); } catch { continue; }
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const rec = JSON.parse(line) as { level?: number; msg?: string; err?: { code?: string; message?: string } };
        if ((rec.level ?? 0) < 40) continue;
        const why = [rec.err?.code, rec.err?.message?.slice(0, 100)].filter(Boolean).join(' ');
        const key = `${name.replace(/\d+$/, '')} ${rec.level! >= 50 ? 'error' : 'warn'}: ${rec.msg}${why ? ` (${why})` : ''}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      } catch { /* not a JSON line */ }
    }
  }
  return [...counts].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([k, n]) => `  ${String(n).padStart(5)} × ${k}`).join('\n');
}

// Exit explicitly: keep-alive sockets to the edge must not hold the process open.
process.exit(await main(process.argv.slice(2)));
