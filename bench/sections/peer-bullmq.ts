/**
 * Optional peer: BullMQ flows on the local Redis (127.0.0.1:6379, a unique key
 * prefix, everything obliterated afterwards), same fork5 shape:
 * job A runs, then adds a flow whose parent E waits for children B, C, D
 * (deterministic job ids, so a retried A cannot add the flow twice). An
 * execution is done when E completes (QueueEvents). Skipped when no Redis
 * answers there.
 */
import { seqAndConcurrent, throughputSpecs } from '../lib/load.js';
import { fork5, fork5Expected, importPeer, peerVersion } from '../lib/peers.js';
import { defineSection, SkipSection } from '../lib/section.js';

const SEQUENTIAL = 200;
const CONCURRENT = 640;
const IN_FLIGHT = 64;
const WORKER_CONCURRENCY = 128;
const REDIS = { host: '127.0.0.1', port: 6379 };

export default defineSection({
  name: 'peer-bullmq',
  title: 'Peer: BullMQ flows on local Redis, fork5 shape',
  figures: [
    ...throughputSpecs('seq', 'one at a time'),
    ...throughputSpecs('c64', `${IN_FLIGHT} in flight`),
  ],
  ratios: [
    { key: 'c64OverSeq', label: `${IN_FLIGHT} in flight / one at a time`, numerator: 'c64.executionsPerSec', denominator: 'seq.executionsPerSec' },
  ],
  async setup(ctx) {
    const { Redis } = await importPeer('ioredis', () => import('ioredis'));
    const probe = new Redis({ ...REDIS, lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => {});
    let appendonly = 'unknown';
    try {
      await probe.connect();
      await probe.ping();
      appendonly = ((await probe.config('GET', 'appendonly')) as string[])[1] ?? 'unknown';
    } catch (e) {
      throw new SkipSection(`no Redis at ${REDIS.host}:${REDIS.port} (${(e as Error).message})`);
    } finally {
      probe.disconnect();
    }

    const { Queue, Worker, FlowProducer, QueueEvents } = await importPeer('bullmq', () => import('bullmq'));
    const prefix = `smartspec-bench-${process.pid}-${Date.now().toString(36)}`;
    const name = 'fork5';
    const connection = { ...REDIS, maxRetriesPerRequest: null };
    const queue = new Queue(name, { connection, prefix });
    const flows = new FlowProducer({ connection, prefix });
    const events = new QueueEvents(name, { connection, prefix });
    const waiting = new Map<string, { resolve: (v: number) => void; reject: (e: Error) => void }>();

    const worker = new Worker(
      name,
      async (job) => {
        const { execId } = job.data as { execId: string };
        switch (job.name) {
          case 'A': {
            const a = fork5.a((job.data as { input: number }).input);
            const child = (step: string) => ({ name: step, queueName: name, data: { execId, a }, opts: { jobId: `${execId}-${step}` } });
            await flows.add({ name: 'E', queueName: name, data: { execId }, opts: { jobId: `${execId}-E` }, children: [child('B'), child('C'), child('D')] });
            return a;
          }
          case 'B': return { step: 'b', value: fork5.b((job.data as { a: number }).a) };
          case 'C': return { step: 'c', value: fork5.c((job.data as { a: number }).a) };
          case 'D': return { step: 'd', value: fork5.d((job.data as { a: number }).a) };
          case 'E': {
            const v: Record<string, number> = {};
            for (const r of Object.values(await job.getChildrenValues<{ step: string; value: number }>())) v[r.step] = r.value;
            return fork5.e(v.b, v.c, v.d);
          }
          default: throw new Error(`unknown job ${job.name}`);
        }
      },
      { connection, prefix, concurrency: WORKER_CONCURRENCY },
    );
    worker.on('error', (e) => ctx.log(`worker error: ${e.message}`));
    events.on('completed', ({ jobId, returnvalue }) => {
      const w = waiting.get(jobId);
      if (!w) return;
      waiting.delete(jobId);
      w.resolve(Number(returnvalue));
    });
    events.on('failed', ({ jobId, failedReason }) => {
      const execId = jobId.replace(/-[A-E]$/, '');
      const w = waiting.get(`${execId}-E`);
      if (!w) return;
      waiting.delete(`${execId}-E`);
      w.reject(new Error(`job ${jobId} failed: ${failedReason}`));
    });
    await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);

    let execs = 0;
    const execute = async (input: number) => {
      const execId = `x${++execs}`;
      const done = new Promise<number>((resolve, reject) => waiting.set(`${execId}-E`, { resolve, reject }));
      await queue.add('A', { execId, input }, { jobId: `${execId}-A` });
      const e = await done;
      if (e !== fork5Expected(input)) throw new Error(`${execId}: E = ${e}, expected ${fork5Expected(input)}`);
    };

    const seqN = ctx.count(SEQUENTIAL);
    const conN = ctx.count(CONCURRENT);
    return {
      params: {
        sequentialExecutions: seqN,
        concurrentExecutions: conN,
        inFlight: IN_FLIGHT,
        workerConcurrency: WORKER_CONCURRENCY,
        redisAppendonly: appendonly,
        bullmq: await peerVersion('bullmq'),
      },
      measure: (run) => seqAndConcurrent(run, seqN, conN, IN_FLIGHT, execute),
      async close() {
        await worker.close();
        await queue.obliterate({ force: true });
        await Promise.all([events.close(), flows.close(), queue.close()]);
      },
    };
  },
});
