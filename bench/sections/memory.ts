/**
 * Memory: executions waiting on signals in one worker process. A waiting
 * execution is passivated — its actor is dropped and rebuilt from the log
 * when its signal arrives — so it should cost almost nothing in memory.
 * Measured as the process's RSS with 10,000 waiting (and, for contrast, heap
 * growth when the same actors are kept hosted).
 */
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { Engine } from '../../src/worker/engine.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { closedLoop } from '../lib/load.js';
import { defineSection } from '../lib/section.js';

const WAITING = validateDefinition({
  id: 'approval',
  steps: [
    { id: 'draft', type: 'transform', value: { doc: '{{input.n}}' } },
    { id: 'approve', type: 'signal' },
    { id: 'publish', type: 'transform', value: { approved: '{{steps.approve.output}}' } },
  ],
});

const mib = (bytes: number) => bytes / 1024 / 1024;
const gc = () => (globalThis as { gc?: () => void }).gc?.();

export default defineSection({
  name: 'memory',
  title: 'Memory: executions waiting on a signal in one worker',
  figures: [
    { key: 'waiting.rssMiB', label: 'RSS with 10,000 waiting (passivated)', unit: 'MiB', better: 'lower' },
    { key: 'waiting.heapPerExecutionKiB', label: 'heap growth per waiting execution, passivated', unit: 'KiB', better: 'lower' },
    { key: 'hosted.heapPerExecutionKiB', label: 'heap growth per waiting execution, kept hosted', unit: 'KiB', better: 'lower' },
  ],
  async setup(ctx) {
    const count = ctx.count(10_000);
    const nc = await connectNats(ctx.natsUrl, 'bench-memory');
    const log = await EventLog.open(nc);
    let batch = 0;
    const fill = async (engine: Engine, passivate: boolean) => {
      const tag = `${process.pid}-${batch++}`;
      gc();
      const heapBefore = process.memoryUsage().heapUsed;
      await closedLoop(count, 64, async (i) => {
        const runner = await engine.start({ definition: WAITING, input: { n: i }, executionId: `mem-${tag}-${i}` });
        const { status } = await runner.settled();
        if (status !== 'WAITING') throw new Error(`expected WAITING, got ${status}`);
        if (passivate) engine.release(runner.executionId); // what the worker does
      });
      gc();
      const m = process.memoryUsage();
      return { rss: m.rss, heapPerExecution: (m.heapUsed - heapBefore) / count };
    };
    return {
      params: { waitingExecutions: count, exposeGc: typeof (globalThis as { gc?: unknown }).gc === 'function' },
      async measure() {
        const passive = await Engine.create({ nc, log });
        const p = await fill(passive, true);
        await passive.close();
        const hosted = await Engine.create({ nc, log });
        const h = await fill(hosted, false);
        await hosted.close();
        return {
          'waiting.rssMiB': mib(p.rss),
          'waiting.heapPerExecutionKiB': p.heapPerExecution / 1024,
          'hosted.heapPerExecutionKiB': h.heapPerExecution / 1024,
        };
      },
      async close() {
        await nc.close();
      },
    };
  },
});
