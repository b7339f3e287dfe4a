/**
 * Engine, workload fork5: A → {B, C, D} → E with transform steps (no I/O), at
 * full durability: every transition is appended and acknowledged before
 * anything follows from it. One execution at a time, and 64 in flight.
 */
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { Engine } from '../../src/worker/engine.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { closedLoop, throughputFigures, throughputSpecs } from '../lib/load.js';
import { defineSection } from '../lib/section.js';

export const FORK5 = validateDefinition({
  id: 'fork5',
  steps: [
    { id: 'A', type: 'transform', value: { n: '{{input.n}}' } },
    { id: 'B', type: 'transform', value: { b: '{{steps.A.output.n}}' } },
    { id: 'C', type: 'transform', value: { c: '{{steps.A.output.n}}' } },
    { id: 'D', type: 'transform', value: { d: '{{steps.A.output.n}}' } },
    { id: 'E', type: 'transform', value: { b: '{{steps.B.output}}', c: '{{steps.C.output}}', d: '{{steps.D.output}}' } },
  ],
  parallel: [['B', 'C', 'D']],
});
const EVENTS_PER_EXECUTION = 12; // started, 5 × (started + completed), completed

export default defineSection({
  name: 'fork5',
  title: 'Engine: fork5 (A → {B,C,D} → E, transform steps, every transition acknowledged)',
  figures: [
    ...throughputSpecs('seq', 'one at a time'),
    ...throughputSpecs('c64', '64 in flight'),
    { key: 'c64.stepsPerSec', label: '64 in flight', unit: 'steps/s', better: 'higher' },
    { key: 'c64.eventsPerSec', label: '64 in flight', unit: 'events/s', better: 'higher' },
  ],
  ratios: [
    { key: 'eventsVsCeiling', label: 'engine events/s ÷ append ceiling (noAsyncTraces)', numerator: 'c64.eventsPerSec', denominator: 'ceiling:noAsyncTraces.eventsPerSec' },
    { key: 'vsLanggraphSeq', label: 'engine ÷ LangGraph, one at a time', numerator: 'seq.executionsPerSec', denominator: 'peer-langgraph:seq.executionsPerSec' },
    { key: 'vsLanggraphC64', label: 'engine ÷ LangGraph, 64 in flight', numerator: 'c64.executionsPerSec', denominator: 'peer-langgraph:c64.executionsPerSec' },
  ],
  async setup(ctx) {
    const nc = await connectNats(ctx.natsUrl, 'bench-fork5');
    const log = await EventLog.open(nc);
    const engine = await Engine.create({ nc, log });
    const seqCount = ctx.count(500);
    const c64Count = ctx.count(4000);
    let runId = 0;
    const runOne = async (tag: string, i: number) => {
      const runner = await engine.start({ definition: FORK5, input: { n: i }, executionId: `f5-${tag}-${i}` });
      const { status } = await runner.done;
      if (status !== 'COMPLETED') throw new Error(`fork5 execution ended ${status}`);
    };
    return {
      params: { seqExecutions: seqCount, c64Executions: c64Count, eventsPerExecution: EVENTS_PER_EXECUTION },
      async measure() {
        const tag = `${process.pid}-${runId++}`;
        const seq = await closedLoop(seqCount, 1, (i) => runOne(`${tag}s`, i));
        const c64 = await closedLoop(c64Count, 64, (i) => runOne(`${tag}c`, i));
        const perSec = c64.latenciesMs.length / c64.seconds;
        return {
          ...throughputFigures('seq', seq),
          ...throughputFigures('c64', c64),
          'c64.stepsPerSec': perSec * 5,
          'c64.eventsPerSec': perSec * EVENTS_PER_EXECUTION,
        };
      },
      async close() {
        await engine.close();
        await nc.close();
      },
    };
  },
});
