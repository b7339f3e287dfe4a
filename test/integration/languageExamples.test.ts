/**
 * The examples of the workflow language (examples/*.json) run offline on a
 * real nats-server, give the outputs their descriptions promise, and replay.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { useEngine } from '../support/engine.js';
import { parseDefinition } from '../../src/definition/validate.js';
import { replayExecution } from '../../src/log/replay.js';
import { plainContext } from '../support/context.js';
import { Engine } from '../../src/worker/engine.js';
import { WorkflowRegistry } from '../../src/registry/workflows.js';
import { replayWithChildren } from '../../src/log/childReplay.js';
import { defaultExecutors } from '../../src/steps/index.js';
import { llmExecutor } from '../../src/steps/llm.js';
import { createLlmRouter } from '../../src/llm/index.js';

const nats = useNatsServer();
const fx = useEngine(nats);

const example = (file: string) => parseDefinition(readFileSync(new URL(`../../examples/${file}`, import.meta.url), 'utf8'), file);

async function runExample(file: string, input: unknown, engine?: Engine) {
  const runner = await (engine ?? (await fx.engine())).start({ definition: example(file), input });
  const outcome = await runner.done;
  expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
  expect(replayExecution(runner.executionId, await fx.log.read(runner.executionId)).ok).toBe(true);
  // Child executions (map items, workflow steps) replay too, and match what the parent recorded of them.
  expect((await replayWithChildren(runner.executionId, (id) => fx.log.read(id))).ok).toBe(true);
  return { outputs: plainContext(outcome.snapshot.context).outputs, output: outcome.snapshot.context.output };
}

/** An engine as a worker has it for examples with child workflows: a registry holding examples/summarize.json, and llm steps on the offline local provider. */
async function engineWithRegistry(): Promise<Engine> {
  const registry = await WorkflowRegistry.open(fx.nc);
  await registry.register(example('summarize.json'));
  return Engine.create({ nc: fx.nc, log: fx.log, registry, executors: defaultExecutors({ llm: llmExecutor(createLlmRouter({})) }) });
}

describe('language examples', () => {
  it('switch.json routes a billing text to refund, a crash to the two-step bug case, anything else to default', async () => {
    expect((await runExample('switch.json', { text: 'My invoice is wrong' })).output).toEqual({ action: 'refund', for: 'My invoice is wrong' });
    expect((await runExample('switch.json', { text: 'it crashed' })).output).toEqual({ notified: 101 });
    expect((await runExample('switch.json', { text: 'hello' })).output).toEqual({ action: 'none' });
  });

  it('parallel.json joins two branches', async () => {
    expect((await runExample('parallel.json', { feature: 'export' })).output).toEqual({ security: 'ok', perf: { sleptMs: 200 } });
  });

  it('loop.json stops when the critique is good', async () => {
    const { outputs } = await runExample('loop.json', { target: 3 });
    expect(outputs.final).toEqual({ good: true, version: 3 });
  });

  it('graph.json', async () => {
    expect((await runExample('graph.json', {})).output).toEqual({ ga: 1, gb: 2, gc: { sleptMs: 300 }, gd: 3, ge: { b: 2, c: { sleptMs: 300 } } });
  });

  it('expressions.json', async () => {
    const { outputs } = await runExample('expressions.json', { orders: [{ sku: 'a', qty: 2, price: 5 }, { sku: 'b', qty: 1, price: 30 }] });
    expect(outputs.total).toEqual({ sum: 40, skus: ['a', 'b'] });
    expect(outputs.bigOrder).toBe('needs approval');
  });

  it('map.json runs the block per document, in document order', async () => {
    const { outputs } = await runExample('map.json', { docs: ['alpha beta', 'gamma', 'delta epsilon zeta'] });
    expect(outputs.perDoc).toEqual([{ n: 1, doc: 'alpha beta', long: true }, { n: 2, doc: 'gamma', long: false }, { n: 3, doc: 'delta epsilon zeta', long: true }]);
    expect(outputs.report).toEqual({ docs: 3, long: [1, 3] });
  });

  describe('with a registered child workflow', () => {
    let engine: Engine;
    it('workflow.json gets the output of its child execution', async () => {
      engine = await engineWithRegistry();
      const { output } = await runExample('workflow.json', { text: '  the quick brown fox jumps ' }, engine);
      expect(output).toEqual({ summary: 'the quick brown', words: 5 });
    });

    it('triage.json: classify, switch, map, loop and a child workflow', async () => {
      const { output } = await runExample('triage.json', { text: 'the export crashes: a bug', docs: ['stack trace', 'steps to reproduce'] }, engine);
      expect(output).toEqual({
        category: 'bug',
        route: { queue: 'engineering', priority: 'high' },
        docs: [{ doc: 'stack trace', n: 1, queue: 'engineering' }, { doc: 'steps to reproduce', n: 2, queue: 'engineering' }],
        escalation: 2,
        summary: 'the export crashes:',
      });
      await engine.close();
    });
  });
});
