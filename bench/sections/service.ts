/**
 * Service: fork5 run through the product as users run it — `smartspec serve`
 * (edge and worker in one process) and, separately, an edge with 2 workers,
 * each a real child process on the bench's nats-server. Executions are
 * submitted over HTTP (64 in flight, and one at a time) and by publishing
 * `smartspec.cmd.start` straight to NATS (the event-driven path); an execution
 * counts when its ExecutionCompleted is seen on the log. CPU time per
 * execution is charged to each process from /proc (edge, workers, nats-server).
 *
 * Only one deployment runs at a time (their workers would share the command
 * queue), so each run starts and stops both in turn.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { CommandBus } from '../../src/bus/commands.js';
import { EventLog } from '../../src/log/eventLog.js';
import { verifyChain } from '../../src/log/records.js';
import { connectNats } from '../../src/nats/connect.js';
import { EXECUTION_SUBJECTS } from '../../src/nats/names.js';
import { closedLoop, throughputFigures } from '../lib/load.js';
import { BENCH_DIR } from '../lib/peers.js';
import { defineSection, type BenchContext } from '../lib/section.js';
import { FORK5 } from './fork5.js';
import { freePort } from '../../soak/processes.js';

const IN_FLIGHT = 64;
const BIN = resolve(BENCH_DIR, '..', 'bin', 'smartspec.mjs');
const CLOCK_TICKS_PER_SEC = 100; // USER_HZ on Linux
const END_TYPES = new Set(['ExecutionCompleted', 'ExecutionFailed', 'ExecutionCancelled']);
/**
 * Executions run untimed through a freshly started deployment before it is measured, on each
 * path: the in-process engine it is compared with is measured warm, and a cold process spends
 * its first thousand executions compiling (its CPU per execution about 40 % higher).
 */
export const WARM_UP = 600;
/** Histories checked (hash chain, completed) per measurement: enough to catch a broken path, cheap. */
const VERIFY_SAMPLE = 20;

type Deployment = 'serve' | 'split';
type Path = 'http' | 'nats';

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC; // utime, stime
  } catch {
    return 0;
  }
}

interface Running { edgeUrl: string; edge: ChildProcess; workers: ChildProcess[]; stop(): Promise<void> }

/** Start a deployment as child processes and wait until the edge is ready. */
export async function startDeployment(ctx: BenchContext, kind: Deployment): Promise<Running> {
  const port = await freePort();
  // BENCH_SERVICE_LOG=warn (a pino level) shows the services' logs on the bench's stdout.
  const logLevel = process.env.BENCH_SERVICE_LOG;
  const env = { ...process.env, NATS_URL: ctx.natsUrl, PORT: String(port), LOG_LEVEL: logLevel ?? 'silent', RATE_LIMIT_MAX: '100000000' };
  const start = (cmd: string) => {
    const child = spawn(process.execPath, [BIN, cmd], { env, stdio: ['ignore', logLevel ? 'inherit' : 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
    child.once('exit', (code, signal) => {
      if (!stopping && code !== 0) ctx.log(`${cmd} exited (${code ?? signal}): ${stderr}`);
    });
    return child;
  };
  let stopping = false;
  const edge = start(kind === 'serve' ? 'serve' : 'edge');
  const workers = kind === 'serve' ? [] : [start('worker'), start('worker')];
  const edgeUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000; // three cold starts of the CLI on a busy machine
  for (;;) {
    const ok = await fetch(`${edgeUrl}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > deadline || edge.exitCode !== null) throw new Error(`${kind}: the edge was not ready within 90 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    edgeUrl,
    edge,
    workers,
    async stop() {
      stopping = true;
      await Promise.all([edge, ...workers].map((c) => new Promise<void>((res) => {
        if (c.exitCode !== null || c.signalCode !== null) return res();
        c.once('exit', () => res());
        c.kill('SIGTERM');
        setTimeout(() => c.kill('SIGKILL'), 10_000).unref();
      })));
    },
  };
}

/** Resolves each execution's promise when its end record is seen on the log. */
export class EndWatcher {
  private readonly waiting = new Map<string, { resolve: (type: string) => void }>();
  private readonly sub: Subscription;
  constructor(nc: NatsConnection) {
    this.sub = nc.subscribe(EXECUTION_SUBJECTS, {
      callback: (_err, msg) => {
        const w = this.waiting.get(msg.subject.slice('smartspec.exec.'.length));
        if (!w) return;
        const { type } = msg.json<{ type: string }>();
        if (END_TYPES.has(type)) w.resolve(type);
      },
    });
  }
  /** Register before submitting, so the end cannot be missed. */
  expect(executionId: string): Promise<string> {
    return new Promise<string>((resolve) => this.waiting.set(executionId, { resolve })).finally(() => this.waiting.delete(executionId));
  }
  close(): void {
    this.sub.unsubscribe();
  }
}

export default defineSection({
  name: 'service',
  title: `Service: fork5 through serve and edge + 2 workers (child processes), over HTTP and NATS`,
  figures: [
    ...(['serve', 'split'] as const).flatMap((d) => {
      const who = d === 'serve' ? 'serve' : 'edge + 2 workers';
      return [
        { key: `${d}.http.executionsPerSec`, label: `${who}, HTTP, ${IN_FLIGHT} in flight`, unit: 'executions/s', better: 'higher' as const },
        { key: `${d}.http.p50Ms`, label: `${who}, HTTP, ${IN_FLIGHT} in flight p50`, unit: 'ms', better: 'lower' as const },
        { key: `${d}.http.p99Ms`, label: `${who}, HTTP, ${IN_FLIGHT} in flight p99`, unit: 'ms', better: 'lower' as const },
        { key: `${d}.seq.p50Ms`, label: `${who}, HTTP, one at a time p50`, unit: 'ms', better: 'lower' as const },
        { key: `${d}.seq.p99Ms`, label: `${who}, HTTP, one at a time p99`, unit: 'ms', better: 'lower' as const },
        { key: `${d}.nats.executionsPerSec`, label: `${who}, cmd.start on NATS, ${IN_FLIGHT} in flight`, unit: 'executions/s', better: 'higher' as const },
        { key: `${d}.cpuMs.service`, label: `${who}: CPU of the service process(es) per execution (HTTP)`, unit: 'ms', better: 'lower' as const },
        { key: `${d}.cpuMs.nats`, label: `${who}: CPU of nats-server per execution (HTTP)`, unit: 'ms', better: 'lower' as const },
      ];
    }),
    { key: 'split.cpuMs.edge', label: 'edge + 2 workers: CPU of the edge per execution (HTTP)', unit: 'ms', better: 'lower' },
    { key: 'split.cpuMs.workers', label: 'edge + 2 workers: CPU of both workers per execution (HTTP)', unit: 'ms', better: 'lower' },
  ],
  ratios: [
    { key: 'serveVsEngineC64', label: `serve over HTTP ÷ engine in-process, ${IN_FLIGHT} in flight`, numerator: 'serve.http.executionsPerSec', denominator: 'fork5:c64.executionsPerSec' },
    { key: 'splitVsEngineC64', label: `edge + 2 workers over HTTP ÷ engine in-process, ${IN_FLIGHT} in flight`, numerator: 'split.http.executionsPerSec', denominator: 'fork5:c64.executionsPerSec' },
    { key: 'serveSeqP50VsEngine', label: 'serve one at a time p50 ÷ engine in-process p50 (lower is better)', numerator: 'serve.seq.p50Ms', denominator: 'fork5:seq.p50Ms' },
    { key: 'serveVsLanggraphC64', label: `serve over HTTP ÷ LangGraph in-process, ${IN_FLIGHT} in flight`, numerator: 'serve.http.executionsPerSec', denominator: 'peer-langgraph:c64.executionsPerSec' },
    { key: 'serveVsBullmqC64', label: `serve over HTTP ÷ BullMQ, ${IN_FLIGHT} in flight`, numerator: 'serve.http.executionsPerSec', denominator: 'peer-bullmq:c64.executionsPerSec' },
    { key: 'natsVsHttpServe', label: 'serve: cmd.start on NATS ÷ HTTP', numerator: 'serve.nats.executionsPerSec', denominator: 'serve.http.executionsPerSec' },
  ],
  async setup(ctx) {
    const nc = await connectNats(ctx.natsUrl, 'bench-service');
    const bus = await CommandBus.open(nc);
    const log = await EventLog.open(nc);
    const ends = new EndWatcher(nc);
    const c64Count = ctx.count(2000);
    const seqCount = ctx.count(200);
    let runId = 0;

    const submitHttp = async (edgeUrl: string, executionId: string, n: number) => {
      const r = await fetch(`${edgeUrl}/executions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ definition: FORK5, input: { n }, executionId }),
      });
      if (r.status !== 202) throw new Error(`POST /executions: ${r.status} ${await r.text()}`);
      await r.arrayBuffer().catch(() => undefined);
    };
    const submitNats = (executionId: string, n: number) => bus.publish('start', { executionId, definition: FORK5, input: { n } }, `start:${executionId}`);

    /** Runs `total` executions through one path and checks a sample of their histories. */
    const drive = async (path: Path, edgeUrl: string, tag: string, total: number, inFlight: number) => {
      const ids: string[] = [];
      const result = await closedLoop(total, inFlight, async (i) => {
        const executionId = `svc-${tag}-${i}-${randomUUID().slice(0, 8)}`;
        ids.push(executionId);
        const ended = ends.expect(executionId);
        if (path === 'http') await submitHttp(edgeUrl, executionId, i);
        else await submitNats(executionId, i);
        const type = await ended;
        if (type !== 'ExecutionCompleted') throw new Error(`${executionId} ended ${type}`);
      });
      for (const id of ids.filter((_, i) => i % Math.max(1, Math.floor(ids.length / VERIFY_SAMPLE)) === 0)) {
        const history = await log.read(id);
        const breaks = verifyChain(history);
        if (breaks.length || history.at(-1)?.record.type !== 'ExecutionCompleted') throw new Error(`${id}: history does not verify (${breaks.length} breaks, last ${history.at(-1)?.record.type})`);
      }
      return result;
    };

    const measureDeployment = async (kind: Deployment, tag: string, warmup: boolean): Promise<Record<string, number>> => {
      const d = await startDeployment(ctx, kind);
      try {
        const scale = warmup ? 0.1 : 1;
        const c64 = Math.ceil(c64Count * scale);
        const warm = Math.ceil(WARM_UP * scale);
        await drive('http', d.edgeUrl, `${tag}wh`, warm, IN_FLIGHT);
        await drive('nats', d.edgeUrl, `${tag}wn`, warm, IN_FLIGHT);
        const pids = { edge: d.edge.pid!, workers: d.workers.map((w) => w.pid!) };
        const cpu = () => ({ edge: cpuSeconds(pids.edge), workers: pids.workers.reduce((s, p) => s + cpuSeconds(p), 0), nats: cpuSeconds(ctx.natsPid) });
        const before = cpu();
        const http = await drive('http', d.edgeUrl, `${tag}h`, c64, IN_FLIGHT);
        const after = cpu();
        const seq = await drive('http', d.edgeUrl, `${tag}s`, Math.ceil(seqCount * scale), 1);
        const natsRun = await drive('nats', d.edgeUrl, `${tag}n`, c64, IN_FLIGHT);
        const perExecMs = (s: number) => (s * 1000) / c64;
        const out: Record<string, number> = {
          ...prefixed(`${kind}.http`, throughputFigures('x', http)),
          [`${kind}.seq.p50Ms`]: throughputFigures('x', seq)['x.p50Ms'],
          [`${kind}.seq.p99Ms`]: throughputFigures('x', seq)['x.p99Ms'],
          [`${kind}.nats.executionsPerSec`]: natsRun.latenciesMs.length / natsRun.seconds,
          [`${kind}.cpuMs.service`]: perExecMs(after.edge - before.edge + after.workers - before.workers),
          [`${kind}.cpuMs.nats`]: perExecMs(after.nats - before.nats),
        };
        if (kind === 'split') {
          out['split.cpuMs.edge'] = perExecMs(after.edge - before.edge);
          out['split.cpuMs.workers'] = perExecMs(after.workers - before.workers);
        }
        return out;
      } finally {
        await d.stop();
      }
    };

    return {
      params: { c64Executions: c64Count, seqExecutions: seqCount, inFlight: IN_FLIGHT, bin: join('bin', 'smartspec.mjs') },
      async measure(run) {
        const tag = `${process.pid}-${runId++}`;
        const order: Deployment[] = run.index % 2 === 0 ? ['serve', 'split'] : ['split', 'serve'];
        const out: Record<string, number> = {};
        for (const kind of order) Object.assign(out, await measureDeployment(kind, `${tag}${kind[0]}`, run.warmup));
        return out;
      },
      async close() {
        ends.close();
        await nc.close();
      },
    };
  },
});

/** `x.executionsPerSec` → `<prefix>.executionsPerSec`. */
function prefixed(prefix: string, figures: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(figures).map(([k, v]) => [`${prefix}${k.slice(1)}`, v]));
}
