/**
 * A token budget shared by map items running at once, on a real nats-server
 * with the built-in `local` LLM provider (it reports usage): each item is
 * given a part of what is left, recorded with its start, so together they
 * stay within the parent's budget; an item given too little fails with
 * BUDGET_EXCEEDED, and replay of the parent and every item verifies.
 */
import { describe, expect, it } from 'vitest';
import { createLlmRouter } from '../../src/llm/index.js';
import { replayWithChildren } from '../../src/log/childReplay.js';
import { defaultExecutors } from '../../src/steps/index.js';
import { llmExecutor } from '../../src/steps/llm.js';
import { def, useEngine } from '../support/engine.js';
import { useNatsServer } from '../support/nats.js';
import { plainContext } from '../support/context.js';

const nats = useNatsServer();
const fx = useEngine(nats);

type Rec = Record<string, any>;

describe('a token budget over map items running at once', () => {
  it('gives each item a share of what is left, keeps the total within the budget, and fails the items left without tokens with BUDGET_EXCEEDED', async () => {
    const engine = await fx.engine(defaultExecutors({ llm: llmExecutor(createLlmRouter({})) }));
    const budget = 400;
    const definition = def({
      id: 'map-budget',
      budget: { maxTokens: budget },
      steps: [{
        id: 'm', type: 'map', items: '{% [1,2,3,4,5,6,7,8,9,10,11,12] %}', maxConcurrency: 4, toleratedFailures: 12,
        steps: [{ id: 'write', type: 'llm', prompt: 'Write three long paragraphs about item {{item}} of the list, with as much detail as you can.' }],
      }],
    });
    const runner = await engine.start({ definition });
    const outcome = await runner.done;
    expect(outcome.status).toBe('COMPLETED');
    const records = (await fx.log.read(runner.executionId)).map((r) => r.record as Rec);

    // Every start names the tokens given, and at no point do the items running hold more than was left.
    const held = new Map<number, number>();
    let used = 0;
    for (const r of records.filter((x) => x.stepId === 'm')) {
      for (const l of r.launch ?? []) {
        expect(l.maxTokens).toEqual(expect.any(Number));
        held.set(l.index, l.maxTokens);
      }
      for (const x of [...(r.results ?? []), ...(r.failures ?? [])]) {
        held.delete(x.index);
        used += x.usage?.totalTokens ?? 0;
      }
      expect(used + [...held.values()].reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(budget);
    }

    const usage = plainContext(outcome.snapshot.context).usage;
    expect(usage.totalTokens).toBeGreaterThan(0);
    expect(usage.totalTokens).toBeLessThanOrEqual(budget);
    const outputs = plainContext(outcome.snapshot.context).outputs.m as Rec[];
    const refused = outputs.filter((o) => o.error);
    const written = outputs.filter((o) => !o.error);
    expect(written.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const o of refused) expect(o.error).toMatchObject({ code: 'BUDGET_EXCEEDED', details: { error: { code: 'BUDGET_EXCEEDED' } } });

    const report = await replayWithChildren(runner.executionId, (x) => fx.log.read(x));
    expect(report.ok, JSON.stringify(report.children.filter((c) => !c.ok))).toBe(true);
  });
});
