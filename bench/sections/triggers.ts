/**
 * Triggers: events published on NATS turned into executions (one transform
 * step) by a `smartspec worker` child process through the durable trigger
 * consumer, against the plain path of the same worker in the same run
 * (`smartspec.cmd.start` published straight to NATS). Both closed-loop, 64 in
 * flight: an operation is one publish and the execution's ExecutionCompleted
 * seen on the log. The ratio is what the trigger hop costs (target ≥ 0.8).
 */
import { randomUUID } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { CommandBus } from '../../src/bus/commands.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { connectNats } from '../../src/nats/connect.js';
import { WorkflowRegistry } from '../../src/registry/workflows.js';
import { loadEventsConfig } from '../../src/triggers/config.js';
import { ensureEventsStream, triggeredExecutionId } from '../../src/triggers/triggerConsumer.js';
import { DEFAULT_TENANT } from '../../src/auth/principal.js';
import { closedLoop, throughputFigures } from '../lib/load.js';
import { defineSection } from '../lib/section.js';
import { EndWatcher, startWorker, within } from '../lib/worker.js';

const IN_FLIGHT = 64;
const SUBJECT = 'events.bench.signup';
const WORKFLOW = validateDefinition({
  id: 'bench-trigger',
  triggers: [{ subject: SUBJECT }],
  steps: [{ id: 'greet', type: 'transform', value: { hello: '{{input.n}}' } }],
});
/** The plain path runs the same steps, without the trigger. */
const PLAIN = validateDefinition({ id: 'bench-plain', steps: WORKFLOW.steps });

export default defineSection({
  name: 'triggers',
  title: `Triggers: events → executions through the trigger consumer vs cmd.start, one worker process, ${IN_FLIGHT} in flight`,
  figures: [
    { key: 'trigger.executionsPerSec', label: `event on ${SUBJECT} → execution completed`, unit: 'executions/s', better: 'higher' },
    { key: 'trigger.p50Ms', label: 'event → completed p50', unit: 'ms', better: 'lower' },
    { key: 'trigger.p99Ms', label: 'event → completed p99', unit: 'ms', better: 'lower' },
    { key: 'plain.executionsPerSec', label: 'smartspec.cmd.start → execution completed', unit: 'executions/s', better: 'higher' },
    { key: 'plain.p50Ms', label: 'cmd.start → completed p50', unit: 'ms', better: 'lower' },
    { key: 'plain.p99Ms', label: 'cmd.start → completed p99', unit: 'ms', better: 'lower' },
  ],
  ratios: [{ key: 'triggerVsPlain', label: 'trigger ÷ cmd.start (target ≥ 0.80)', numerator: 'trigger.executionsPerSec', denominator: 'plain.executionsPerSec' }],
  async setup(ctx) {
    const count = ctx.count(2000);
    const nc = await connectNats(ctx.natsUrl, 'bench-triggers');
    const js = jetstream(nc);
    const bus = await CommandBus.open(nc);
    const registry = await WorkflowRegistry.open(nc);
    const stored = await registry.register(WORKFLOW);
    await ensureEventsStream(nc, loadEventsConfig({})); // as the worker makes it: SMARTSPEC_EVENTS over events.>
    const active = { tenant: DEFAULT_TENANT, definition: stored.definition, index: 0, trigger: WORKFLOW.triggers![0] };
    const ends = new EndWatcher(nc);
    let runId = 0;

    const complete = async (executionId: string, publish: () => Promise<unknown>) => {
      const ended = ends.expect(executionId);
      await publish();
      const type = await within(ended, 60_000, executionId);
      if (type !== 'ExecutionCompleted') throw new Error(`${executionId} ended ${type}`);
    };
    const viaTrigger = (tag: string) => (i: number) => {
      const msgID = `${tag}-${i}`;
      return complete(triggeredExecutionId(active, `msg:${msgID}`), () => js.publish(SUBJECT, JSON.stringify({ n: i }), { msgID }));
    };
    const viaCommand = (tag: string) => (i: number) => {
      const executionId = `plain-${tag}-${i}-${randomUUID().slice(0, 8)}`;
      return complete(executionId, () => bus.publish('start', { executionId, definition: PLAIN, input: { n: i } }, `start:${executionId}`));
    };

    /**
     * Ready once an event has gone all the way through: the worker's trigger consumer exists (it takes
     * the events published after it was first created) and its mirror of the registry is loaded.
     */
    const ready = async (tag: string) => {
      for (let k = 0; k < 90; k++) {
        const msgID = `${tag}-probe-${k}`;
        const ended = ends.expect(triggeredExecutionId(active, `msg:${msgID}`));
        await js.publish(SUBJECT, JSON.stringify({ n: -1 }), { msgID });
        if (await Promise.race([ended, new Promise((r) => setTimeout(r, 1000))])) return;
      }
      throw new Error('the worker started no execution from an event within 90 s');
    };

    return {
      params: { executionsPerPath: count, inFlight: IN_FLIGHT, worker: 'smartspec worker (child process)' },
      async measure(run) {
        const tag = `${process.pid}-${runId++}`;
        // The worker runs only while this section measures: it would take other sections' commands.
        const worker = startWorker(ctx);
        try {
          await ready(tag);
          const n = Math.ceil(count * (run.warmup ? 0.1 : 1));
          const ops = { trigger: viaTrigger(tag), plain: viaCommand(tag) };
          // The worker is a fresh process: both paths warm it up untimed, so neither pays for its JIT alone.
          for (const op of Object.values(ops)) await closedLoop(Math.ceil(n / 5), IN_FLIGHT, (i) => op(n + i));
          // Then halves in the order A B B A (B A A B every other run): what drifts meanwhile falls on both.
          const order = run.index % 2 === 0 ? (['trigger', 'plain', 'plain', 'trigger'] as const) : (['plain', 'trigger', 'trigger', 'plain'] as const);
          const done = { trigger: { seconds: 0, latenciesMs: [] as number[] }, plain: { seconds: 0, latenciesMs: [] as number[] } };
          const half = Math.ceil(n / 2);
          for (const [slice, name] of order.entries()) {
            const offset = 2 * n + (slice < 2 ? 0 : half); // ids apart from the warm-up's
            const r = await closedLoop(half, IN_FLIGHT, (i) => ops[name](offset + i));
            done[name].seconds += r.seconds;
            done[name].latenciesMs.push(...r.latenciesMs);
          }
          return { ...throughputFigures('trigger', done.trigger), ...throughputFigures('plain', done.plain) };
        } finally {
          await worker.stop();
        }
      },
      async close() {
        ends.close();
        await nc.close();
      },
    };
  },
});
