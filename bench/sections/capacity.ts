/**
 * Figures for the capacity model (README, Performance; docs/operations.md):
 * fork5 executions started by `cmd.start` on NATS (no HTTP) into `smartspec
 * serve` (a child process; its edge idles), 64 in flight, on the bench's
 * single nats-server. Per execution: records appended, bytes each record takes
 * in the stream, KV writes (execution index, snapshots, everything else) and
 * commands; per record: CPU of the serve process and of nats-server, from /proc.
 * What a cluster of N nodes carries is computed from these in the docs.
 */
import { randomUUID } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { CommandBus } from '../../src/bus/commands.js';
import { connectNats } from '../../src/nats/connect.js';
import { COMMANDS_STREAM, EXECUTION_INDEX_BUCKET, EXECUTIONS_STREAM, SNAPSHOTS_BUCKET } from '../../src/nats/names.js';
import { closedLoop } from '../lib/load.js';
import { defineSection } from '../lib/section.js';
import { FORK5 } from './fork5.js';
import { cpuSeconds, EndWatcher, startDeployment, WARM_UP } from './service.js';

const IN_FLIGHT = 64;
const EXECUTIONS = 2000;

/** Per stream: messages ever written (last_seq) and bytes held, now. */
async function streamCounters(jsm: JetStreamManager): Promise<Map<string, { written: number; messages: number; bytes: number }>> {
  const out = new Map<string, { written: number; messages: number; bytes: number }>();
  for await (const s of jsm.streams.list()) out.set(s.config.name, { written: s.state.last_seq, messages: s.state.messages, bytes: s.state.bytes });
  return out;
}

export default defineSection({
  name: 'capacity',
  title: `Capacity figures: fork5 by cmd.start into serve (child process), ${IN_FLIGHT} in flight`,
  figures: [
    { key: 'executionsPerSec', label: 'executions/s (one serve, one nats-server, this machine)', unit: 'executions/s', better: 'higher' },
    { key: 'recordsPerExecution', label: 'records appended to the event log per execution', unit: 'records', better: 'lower' },
    { key: 'bytesPerRecord', label: 'bytes per record in the event log stream (stream bytes ÷ messages)', unit: 'B', better: 'lower' },
    { key: 'indexWritesPerExecution', label: 'execution index KV writes per execution', unit: 'writes', better: 'lower' },
    { key: 'snapshotWritesPerExecution', label: 'snapshot KV writes per execution', unit: 'writes', better: 'lower' },
    { key: 'otherWritesPerExecution', label: 'other stream writes per execution (commands, other buckets)', unit: 'writes', better: 'lower' },
    { key: 'bytesWrittenPerExecution', label: 'bytes written to all streams per execution (one replica)', unit: 'B', better: 'lower' },
    { key: 'workerCpuUsPerRecord', label: 'CPU of the serve process per record', unit: 'µs', better: 'lower' },
    { key: 'natsCpuUsPerRecord', label: 'CPU of nats-server per record (all its work: log, KV, commands)', unit: 'µs', better: 'lower' },
  ],
  async setup(ctx) {
    const nc = await connectNats(ctx.natsUrl, 'bench-capacity');
    const jsm = await jetstreamManager(nc);
    const bus = await CommandBus.open(nc);
    const ends = new EndWatcher(nc);
    const total = ctx.count(EXECUTIONS);
    let runs = 0;
    return {
      params: { executions: total, inFlight: IN_FLIGHT, deployment: 'serve, cmd.start on NATS', replicas: 1 },
      async measure(run) {
        const d = await startDeployment(ctx, 'serve');
        try {
          const scale = run.warmup ? 0.1 : 1;
          const n = Math.ceil(total * scale);
          const tag = `cap-${process.pid}-${runs++}`;
          const load = (count: number, prefix: string) => closedLoop(count, IN_FLIGHT, async (i) => {
            const executionId = `${prefix}-${i}-${randomUUID().slice(0, 8)}`;
            const ended = ends.expect(executionId);
            await bus.publish('start', { executionId, definition: FORK5, input: { n: i } }, `start:${executionId}`);
            if ((await ended) !== 'ExecutionCompleted') throw new Error(`${executionId} did not complete`);
          });
          await load(Math.ceil(WARM_UP * scale), `${tag}w`); // untimed: a fresh process, as in the service section
          await new Promise((r) => setTimeout(r, 500)); // and its index writes settled before counting starts
          const before = { streams: await streamCounters(jsm), worker: cpuSeconds(d.edge.pid!), nats: cpuSeconds(ctx.natsPid) };
          const measured = await load(n, tag);
          const worker = cpuSeconds(d.edge.pid!) - before.worker;
          const nats = cpuSeconds(ctx.natsPid) - before.nats;
          // Index writes land in the background: let them settle before counting.
          await new Promise((r) => setTimeout(r, 500));
          const after = await streamCounters(jsm);
          const delta = (name: string) => {
            const a = after.get(name), b = before.streams.get(name);
            return { written: (a?.written ?? 0) - (b?.written ?? 0), bytes: (a?.bytes ?? 0) - (b?.bytes ?? 0), messages: (a?.messages ?? 0) - (b?.messages ?? 0) };
          };
          const log = delta(EXECUTIONS_STREAM);
          const index = delta(`KV_${EXECUTION_INDEX_BUCKET}`).written;
          const snapshots = delta(`KV_${SNAPSHOTS_BUCKET}`).written;
          let other = 0, bytesWritten = 0;
          for (const [name, a] of after) {
            const x = delta(name);
            if (name !== EXECUTIONS_STREAM && !name.startsWith(`KV_${EXECUTION_INDEX_BUCKET}`) && !name.startsWith(`KV_${SNAPSHOTS_BUCKET}`)) other += x.written;
            // A stream that kept what it was given (the log) says its bytes; one that replaces (KV, work queues), its size per message.
            bytesWritten += x.messages === x.written ? x.bytes : x.written * (a.messages > 0 ? a.bytes / a.messages : 0);
          }
          const records = log.written;
          return {
            executionsPerSec: n / measured.seconds,
            recordsPerExecution: records / n,
            bytesPerRecord: log.bytes / log.messages,
            indexWritesPerExecution: index / n,
            snapshotWritesPerExecution: snapshots / n,
            otherWritesPerExecution: other / n,
            bytesWrittenPerExecution: bytesWritten / n,
            workerCpuUsPerRecord: (worker * 1e6) / records,
            natsCpuUsPerRecord: (nats * 1e6) / records,
          };
        } finally {
          await d.stop();
        }
      },
      async close() {
        ends.close();
        await nc.close();
      },
    };
  },
});
