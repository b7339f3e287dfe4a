/**
 * Fuzzing nested definitions (the second edition): random trees of switch,
 * parallel, loop, graph and map containers with templates and expressions
 * that refer to random steps. Each is either accepted (it compiles, and a
 * sample runs to its end on a real engine and replays) or refused with a
 * DefinitionError whose every issue names a path; never a crash. Over HTTP:
 * a 202 or a 4xx, never a 5xx.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileWorkflow, initialSnapshot, isTerminal, usesContainers } from '../../machines/index.js';
import { validateDefinition } from '../../src/definition/validate.js';
import type { Definition } from '../../machines/definition.js';
import { DefinitionError } from '../../src/errors.js';
import { replayWithChildren } from '../../src/log/childReplay.js';
import { useEngine } from '../support/engine.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService } from '../support/service.js';
import { bounded, checkProperty } from './arbitraries.js';

const nats = useNatsServer();
const fx = useEngine(nats);
const startService = useService(nats);

type Node = Record<string, unknown>;
const REF = fc.nat(30);
/** A value that may read another step (by number, made an id below), the input, an item or an iteration. */
const valueArb = fc.oneof(
  { arbitrary: fc.integer({ min: 0, max: 9 }), weight: 12 },
  { arbitrary: fc.constantFrom('{{input.x}}', '{% input.x + 1 %}'), weight: 4 },
  { arbitrary: REF.map((n) => `{{steps.s${n}.output}}`), weight: 1 },
  { arbitrary: REF.map((n) => `{% steps.s${n}.output %}`), weight: 1 },
  { arbitrary: fc.constantFrom('{{iteration}}', '{{item}}', '{% $error("x") %}', '{% (1 + %}'), weight: 1 },
);
const leafArb: fc.Arbitrary<Node> = fc.record({ type: fc.constant('transform'), value: valueArb });

const { step: stepArb } = fc.letrec<{ step: Node; block: Node[] }>((tie) => ({
  block: fc.array(tie('step'), { minLength: 0, maxLength: 3 }),
  step: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { arbitrary: leafArb, weight: 6 },
    fc.record({ type: fc.constant('switch'), cases: fc.array(fc.record({ when: fc.constantFrom('{% true %}', '{% false %}', '{{input.x}}', '{% input.x = 1 %}', '{% steps.s1.output = 1 %}'), steps: tie('block') }), { minLength: 0, maxLength: 2 }), default: fc.option(tie('block'), { nil: undefined }) }),
    fc.record({ type: fc.constant('parallel'), branches: fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'bad name'), tie('block'), { maxKeys: 3 }) }),
    fc.record({ type: fc.constant('loop'), maxIterations: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }), until: fc.option(fc.constantFrom('{% true %}', '{% iteration >= 2 %}', '{% steps.s2.output %}'), { nil: undefined }), onMaxIterations: fc.constantFrom('fail', 'continue'), steps: tie('block') }),
    fc.record({ type: fc.constant('graph'), steps: tie('block'), needs: fc.array(fc.array(REF, { maxLength: 2 }), { maxLength: 3 }) }),
    { weight: 1, arbitrary: fc.record({ type: fc.constant('map'), items: fc.constantFrom('{{input.list}}', '{% [1,2] %}', 'nope'), steps: tie('block') }) },
  ),
}));

/** Number the tree's steps s0, s1, … (a few duplicates on purpose) and give graph steps their needs. */
function numbered(steps: Node[], dupEvery: number): Node[] {
  let n = 0;
  const visit = (list: Node[]): Node[] => list.map((raw) => {
    const s: Node = { ...raw, id: dupEvery > 0 && n > 0 && n % dupEvery === 0 ? `s${n - 1}` : `s${n}` };
    n++;
    if (s.type === 'switch') s.cases = (s.cases as Node[]).map((c) => ({ ...c, steps: visit(c.steps as Node[]) }));
    if (s.type === 'switch' && s.default === undefined) delete s.default;
    if (s.type === 'switch' && Array.isArray(s.default)) s.default = visit(s.default as Node[]);
    if (s.type === 'parallel') s.branches = Object.fromEntries(Object.entries(s.branches as Record<string, Node[]>).map(([k, b]) => [k, visit(b)]));
    if (s.type === 'loop' || s.type === 'map') s.steps = visit(s.steps as Node[]);
    if (s.type === 'loop') for (const k of ['maxIterations', 'until']) if (s[k] === undefined) delete s[k];
    if (s.type === 'graph') {
      const needs = s.needs as number[][];
      delete s.needs;
      s.steps = visit(s.steps as Node[]).map((inner, i) => (needs[i]?.length ? { ...inner, needs: needs[i].map((r) => `s${r}`) } : inner));
    }
    return s;
  });
  return visit(steps);
}

const docArb = fc.tuple(fc.array(stepArb, { minLength: 1, maxLength: 4 }), fc.constantFrom(0, 0, 0, 0, 0, 7)).map(([steps, dup]) => ({ id: 'fuzz', steps: numbered(steps, dup) }));

function judge(doc: unknown): Definition | undefined {
  try {
    const d = validateDefinition(doc);
    compileWorkflow(d);
    initialSnapshot('fuzz', d);
    return d;
  } catch (err) {
    if (!(err instanceof DefinitionError)) throw new Error(`validateDefinition threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.stack}`);
    expect(err.issues.length).toBeGreaterThan(0);
    for (const i of err.issues) expect(i.path.trim(), JSON.stringify(i)).not.toBe('');
    return undefined;
  }
}

describe('nested definitions', () => {
  const accepted: Definition[] = [];
  let refused = 0;

  it('are accepted or refused with paths, never a crash', async () => {
    await checkProperty('nested definitions', fc.property(docArb, (doc) => {
      const d = judge(doc);
      if (d) accepted.push(d);
      else refused++;
    }), bounded(600, 20_000));
    console.log(`[fuzz] nested: ${accepted.length} accepted, ${refused} refused`);
    expect(accepted.length).toBeGreaterThan(5);
    expect(refused).toBeGreaterThan(5);
  }, 40_000);

  it('a sample of the accepted runs to its end and replays', async () => {
    const engine = await fx.engine();
    // The largest trees: those nest containers most. Nested loops multiply their iterations, so a
    // large tree can write thousands of records: a dozen keeps the test well inside its time on a busy CI.
    const sample = [...accepted].sort((a, b) => JSON.stringify(b).length - JSON.stringify(a).length).slice(0, 12);
    expect(sample.some(usesContainers)).toBe(true);
    for (const definition of sample) {
      const runner = await engine.start({ definition, input: { x: 1, list: [1, 2] } });
      const outcome = await runner.done;
      expect(isTerminal(outcome.status), JSON.stringify(definition)).toBe(true);
      // Map items are child executions: their logs replay too, and match what the parent recorded.
      const replay = await replayWithChildren(runner.executionId, (id) => fx.log.read(id));
      expect(replay.ok, `${JSON.stringify(definition)}\n${JSON.stringify(replay)}`).toBe(true);
    }
  }, 120_000);

  it('over HTTP: 202 or a 4xx naming a path, never a 5xx', async () => {
    const svc = await startService({ edge: true, worker: false });
    const docs = fc.sample(docArb, { numRuns: 40, seed: 10 });
    for (const doc of docs) {
      const r = await http(svc.url, 'POST', '/executions', { definition: doc, input: {} });
      expect(r.status, r.text).toBeLessThan(500);
      if (r.status !== 202) expect(r.text).toMatch(/steps/);
    }
  }, 40_000);
});
