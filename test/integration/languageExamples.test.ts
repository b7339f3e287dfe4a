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

const nats = useNatsServer();
const fx = useEngine(nats);

async function runExample(file: string, input: unknown) {
  const definition = parseDefinition(readFileSync(new URL(`../../examples/${file}`, import.meta.url), 'utf8'), file);
  const runner = await (await fx.engine()).start({ definition, input });
  const outcome = await runner.done;
  expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
  expect(replayExecution(runner.executionId, await fx.log.read(runner.executionId)).ok).toBe(true);
  return { outputs: plainContext(outcome.snapshot.context).outputs, output: outcome.snapshot.context.output };
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
});
