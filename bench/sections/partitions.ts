/**
 * fork5 (the engine section's workload, 64 in flight) with the event log in
 * one stream and in three (NATS_PARTITIONS=3), on one nats-server each (a
 * deployment's N is fixed: the two cannot share a server). On one node this
 * measures what partitioning costs or gains without extra hardware; the
 * point of partitions, leaders on different cluster nodes, needs a cluster.
 */
import { join } from 'node:path';
import { connectNats } from '../../src/nats/connect.js';
import { startNatsServer } from '../../src/nats/server.js';
import { EventLog } from '../../src/log/eventLog.js';
import { Partitions } from '../../src/nats/partitions.js';
import { Engine } from '../../src/worker/engine.js';
import { closedLoop, throughputFigures, throughputSpecs } from '../lib/load.js';
import { defineSection } from '../lib/section.js';
import { FORK5 } from './fork5.js';

const LAYOUTS = [1, 3] as const;

export default defineSection({
  name: 'partitions',
  title: 'Engine: fork5, 64 in flight, the log in 1 stream vs 3 partitions (one node)',
  figures: [...throughputSpecs('p1', '1 stream'), ...throughputSpecs('p3', '3 partitions')],
  ratios: [{ key: 'p3OverP1', label: '3 partitions ÷ 1 stream', numerator: 'p3.executionsPerSec', denominator: 'p1.executionsPerSec' }],
  async setup(ctx) {
    const closers: (() => Promise<unknown>)[] = [];
    const close = async () => {
      for (const c of closers.reverse()) await c().catch(() => undefined);
    };
    try {
      const engines = new Map<number, Engine>();
      for (const n of LAYOUTS) {
        const nats = await startNatsServer({ storeDir: join(ctx.tmpDir, `nats-p${n}`) });
        closers.push(() => nats.stop());
        const nc = await connectNats(nats.url, `bench-partitions-${n}`);
        closers.push(() => nc.close());
        const engine = await Engine.create({ nc, log: await EventLog.open(nc, { partitions: new Partitions(n) }) });
        closers.push(() => engine.close());
        engines.set(n, engine);
      }
      const count = ctx.count(4000);
      let runId = 0;
      return {
        params: { executions: count, inFlight: 64 },
        async measure() {
          const tag = `${process.pid}-${runId++}`;
          let sample: Record<string, number> = {};
          // Alternating which goes first: neither always gets the warmer machine.
          const order = runId % 2 ? [...LAYOUTS] : [...LAYOUTS].reverse();
          for (const n of order) {
            const engine = engines.get(n)!;
            const run = await closedLoop(count, 64, async (i) => {
              const runner = await engine.start({ definition: FORK5, input: { n: i }, executionId: `p${n}-${tag}-${i}` });
              const { status } = await runner.done;
              if (status !== 'COMPLETED') throw new Error(`fork5 execution ended ${status}`);
            });
            sample = { ...sample, ...throughputFigures(`p${n}`, run) };
          }
          return sample;
        },
        close,
      };
    } catch (err) {
      await close();
      throw err;
    }
  },
});
