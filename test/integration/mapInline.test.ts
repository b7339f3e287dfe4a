/**
 * `map` over a pure block (transforms only) on a real nats-server: its items
 * run inline in the parent's worker, no child execution, and the parent's
 * log holds every item's step outputs in batched records. 0, 1 and 1,000
 * items; a 2-step block; a failing expression with and without tolerance; a
 * resume that re-runs only the failed item; replay of each; a block with an
 * llm step still runs its items as child executions.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { useNatsServer } from '../support/nats.js';
import { runToEnd } from '../support/engine.js';
import { plainContext } from '../support/context.js';
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { Engine } from '../../src/worker/engine.js';
import { replayExecution } from '../../src/log/replay.js';
import { replayWithChildren } from '../../src/log/childReplay.js';
import type { StoredRecord } from '../../src/log/records.js';
import { createLlmRouter } from '../../src/llm/index.js';
import { llmExecutor } from '../../src/steps/llm.js';
import { defaultExecutors } from '../../src/steps/index.js';

const nats = useNatsServer();
let nc: NatsConnection;
let log: EventLog;
let engine: Engine;

type Doc = Record<string, unknown>;
const t = (id: string, value: unknown, extra: Doc = {}) => ({ id, type: 'transform', value, ...extra });
const map = (id: string, items: string, steps: unknown[], extra: Doc = {}) => ({ id, type: 'map', items, steps, ...extra });
const rec = (records: StoredRecord[], type: string, stepId = 'm') => records.filter((r) => r.record.type === type && (r.record as { stepId?: string }).stepId === stepId).map((r) => r.record as Record<string, any>);
const results = (records: StoredRecord[]) => rec(records, 'StepCompleted').flatMap((r) => r.results ?? []);
const failures = (records: StoredRecord[]) => rec(records, 'StepFailed').flatMap((r) => r.failures ?? []);
const launches = (records: StoredRecord[]) => rec(records, 'StepStarted').flatMap((r) => r.launch ?? []);

beforeAll(async () => {
  nc = await connectNats(nats.url, 'test');
  log = await EventLog.open(nc);
  engine = await Engine.create({ nc, log, executors: defaultExecutors({ llm: llmExecutor(createLlmRouter({})) }) });
});
afterAll(async () => {
  await engine?.close();
  await nc?.close();
});

const run = (d: Doc, input: unknown = {}) => runToEnd(engine, log, d, input);
const expectReplays = (id: string, records: StoredRecord[]) => {
  const report = replayExecution(id, records);
  expect(report.ok, JSON.stringify(report.events?.filter((e) => !e.ok))).toBe(true);
};

describe('map over a pure block: items inline', () => {
  it('0 items: output [], no item record', async () => {
    const { outcome, outputs, records, id } = await run({ id: 'i0', steps: [map('m', '{{input.docs}}', [t('x', '{{item}}')]), t('after', '{{steps.m.output}}')] }, { docs: [] });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs).toMatchObject({ m: [], after: [] });
    expect(results(records)).toEqual([]);
    expectReplays(id, records);
  });

  it("1 item, 2 steps: both steps' outputs recorded for the item in the parent's log, no child; replay checks it", async () => {
    const d = { id: 'i1', steps: [map('m', '{{input.docs}}', [t('x', { doc: '{{item}}', i: '{{index}}' }), t('y', { wrapped: '{{steps.x.output}}', by: '{{input.who}}' })])] };
    const { outcome, outputs, records, id } = await run(d, { docs: ['a'], who: 'me' });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.m).toEqual([{ wrapped: { doc: 'a', i: 0 }, by: 'me' }]);
    expect(results(records)).toEqual([{ index: 0, output: { wrapped: { doc: 'a', i: 0 }, by: 'me' }, steps: { x: { doc: 'a', i: 0 }, y: { wrapped: { doc: 'a', i: 0 }, by: 'me' } } }]);
    expect(launches(records)).toEqual([]);
    expectReplays(id, records);
    const family = await replayWithChildren(id, (x) => log.read(x));
    expect(family.ok).toBe(true);
    expect(family.children).toEqual([]);
  });

  it('1,000 items: every output in item order, at most maxConcurrency items to a record', async () => {
    const docs = Array.from({ length: 1000 }, (_, i) => i);
    const { outcome, outputs, records, id } = await run({ id: 'i1000', steps: [map('m', '{{input.docs}}', [t('a', '{% item * 2 %}'), t('b', '{% steps.a.output + index %}')], { maxConcurrency: 64 })] }, { docs });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.m).toEqual(docs.map((i) => i * 3));
    const batches = rec(records, 'StepCompleted').filter((r) => r.results);
    expect(batches.map((b) => b.results.length)).toEqual([...Array(15).fill(64), 40]);
    expect(results(records).map((r) => r.index)).toEqual(docs);
    expect(results(records)[7]).toEqual({ index: 7, output: 21, steps: { a: 14, b: 21 } });
    expect(records.length).toBeLessThan(25);
    expectReplays(id, records);
  }, 60_000);

  it('when and onError inside the block: a skipped step gives null, a failed one with continue gives {error} and the item goes on', async () => {
    const { outcome, outputs, records } = await run({
      id: 'iwhen',
      steps: [map('m', '{% [1, 2] %}', [t('odd', 'odd', { when: '{% item % 2 = 1 %}' }), t('bad', "{% item = 2 ? $error('two') : item %}", { onError: 'continue' }), t('out', { odd: '{{steps.odd.output}}', bad: '{{steps.bad.output}}' })])],
    });
    expect(outcome.status).toBe('COMPLETED');
    const [one, two] = outputs.m as any[];
    expect(one).toEqual({ odd: 'odd', bad: 1 });
    expect(two.odd).toBeNull();
    expect(two.bad.error).toMatchObject({ code: 'EXPRESSION_FAILED' });
    expect(results(records)[1].steps).toMatchObject({ odd: null, bad: { error: { code: 'EXPRESSION_FAILED' } } });
  });

  const failing = (tolerated: number) => ({
    id: `ifail${tolerated}`,
    steps: [map('m', '{{input.items}}', [t('x', "{% item = 3 ? $error('three') : item * 10 %}")], { toleratedFailures: tolerated })],
  });

  it('a failing expression in one item, none tolerated: the map fails naming the item', async () => {
    const { outcome, records, id } = await run(failing(0), { items: [1, 2, 3] });
    expect(outcome.status).toBe('FAILED');
    expect(outcome.snapshot.context.error).toMatchObject({ code: 'EXPRESSION_FAILED', details: expect.objectContaining({ item: 2, stepId: 'x' }) });
    expect(outcome.snapshot.context.error!.message).toMatch(/item 2 of map 'm', step 'x'.*three/);
    expect(results(records).map((r) => r.index)).toEqual([0, 1]);
    expect(failures(records)).toEqual([{ index: 2, error: expect.objectContaining({ code: 'EXPRESSION_FAILED' }), steps: {} }]);
    expect(records.at(-1)!.record).toMatchObject({ type: 'ExecutionFailed', stepId: 'm' });
    expectReplays(id, records);
  });

  it('a failing expression in one item, one tolerated: {error} in its place', async () => {
    const { outcome, outputs, records, id } = await run(failing(1), { items: [1, 2, 3, 4] });
    expect(outcome.status).toBe('COMPLETED');
    const out = outputs.m as any[];
    expect([out[0], out[1], out[3]]).toEqual([10, 20, 40]);
    expect(out[2].error).toMatchObject({ code: 'EXPRESSION_FAILED' });
    // Item order holds across the split: results, the failure, results.
    const batches = records.map((r) => r.record as Record<string, any>).filter((r) => r.results || r.failures);
    expect(batches.map((r) => [r.type, (r.results ?? r.failures).map((e: { index: number }) => e.index)])).toEqual([['StepCompleted', [0, 1]], ['StepFailed', [2]], ['StepCompleted', [3]]]);
    expectReplays(id, records);
  });

  it('resume of a failed inline map re-runs only the failed item', async () => {
    const first = await run(failing(0), { items: [1, 2, 3, 4] });
    expect(first.outcome.status).toBe('FAILED');
    // Item 3 was evaluated in the failing batch but not recorded: it starts after the resume.
    expect(results(first.records).map((r) => r.index)).toEqual([0, 1]);
    // The same steps (a changed map runs afresh): the expression fails again, for that item alone.
    const outcome = await (await engine.resume(first.id)).done;
    expect(outcome.status).toBe('FAILED');
    const records = await log.read(first.id);
    const after = records.slice(records.findIndex((r) => r.record.type === 'ExecutionResumed'));
    expect(failures(after).map((f) => f.index)).toEqual([2]);
    expect(results(after)).toEqual([]);
    expectReplays(first.id, records);
  });

  it('a map whose block has an llm step still runs its items as child executions', async () => {
    const { outcome, outputs, records, id } = await run({ id: 'illm', steps: [map('m', '{% ["a", "b"] %}', [t('x', 'say {{item}}'), { id: 'ask', type: 'llm', prompt: '{{steps.x.output}}' }])] });
    expect(outcome.status).toBe('COMPLETED');
    expect(outputs.m).toHaveLength(2);
    expect(launches(records).map((l) => l.index)).toEqual([0, 1]);
    expect(results(records).every((r) => typeof r.child === 'string' && r.steps === undefined)).toBe(true);
    const family = await replayWithChildren(id, (x) => log.read(x));
    expect(family.ok).toBe(true);
    expect(family.children).toHaveLength(2);
  });
});
