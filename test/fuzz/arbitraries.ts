/**
 * fast-check arbitraries shared by the fuzz tests: valid workflow definitions
 * (with what running them must end in), structured mutations of them, and
 * arbitrary JSON. Runs are bounded by numRuns in each test, never by a fixed
 * seed; a failure prints the seed and the shrunk counterexample.
 */
import fc, { type Arbitrary, type IRawProperty, type Parameters as FcParameters, type RunDetails } from 'fast-check';

/** Ids that are also names on Object.prototype or of machine states: a step may be called that. */
/** Ids that collide with state names and template roots: valid, and must work. (Names every object has are refused: see definition.test.ts.) */
export const TRICKY_IDS = ['pending', 'running', 'done', 'completed', 'failed', 'cancelled', 'waiting', 'backoff', 'input', 'steps', 'output', 'end', 'group'];

export const stepIdArb: Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_-]{0,7}$/) },
  { weight: 1, arbitrary: fc.constantFrom(...TRICKY_IDS) },
);

export type Doc = Record<string, unknown> & { steps: Record<string, unknown>[]; parallel?: string[][] };

/** A valid definition of transform, sleep(0) and fail steps, its input, and the status running it must end in. */
export interface ValidSpec {
  doc: Doc;
  input: Record<string, unknown>;
  expected: 'COMPLETED' | 'FAILED';
  /** Steps that must have completed exactly once (not skipped, not failed) when it COMPLETED. */
  mustRun: string[];
}

const plainValue: Arbitrary<unknown> = fc.jsonValue({ maxDepth: 2 }).filter((v) => !JSON.stringify(v).includes('{{') && !JSON.stringify(v).includes('}}'));

interface StepPlan {
  type: string;
  valueForm: 'plain' | 'template' | 'nested';
  plain: unknown;
  tpl: number[];
  duration: number;
  message?: { template: boolean; text: string };
  onError?: 'fail' | 'continue';
  retryable: boolean;
  when?: string;
  retry?: number;
  timeoutMs?: number;
}

const stepPlanArb: Arbitrary<StepPlan> = fc.record({
  type: fc.constantFrom('transform', 'transform', 'sleep', 'fail'),
  valueForm: fc.constantFrom('plain', 'template', 'nested'),
  plain: plainValue,
  tpl: fc.array(fc.nat(), { minLength: 3, maxLength: 3 }),
  duration: fc.constantFrom(0, 0, 1, 5),
  message: fc.option(fc.record({ template: fc.boolean(), text: fc.string({ maxLength: 20 }) }), { nil: undefined }),
  onError: fc.constantFrom(undefined, 'fail', 'continue'),
  retryable: fc.boolean(),
  // `when` only on input flags, so the outcome is known: on is always true, flag is random.
  when: fc.constantFrom(undefined, undefined, '{{input.on}}', '{{input.flag}}'),
  retry: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  timeoutMs: fc.option(fc.integer({ min: 1000, max: 60_000 }), { nil: undefined }),
}) as Arbitrary<StepPlan>;

const SIX = { minLength: 6, maxLength: 6 };

/**
 * Plain data first (arrays, records: they shrink well), then built into a
 * definition: ids, consecutive parallel groups, templates that read earlier
 * stages only, and the status running it must end in.
 */
export const validSpecArb: Arbitrary<ValidSpec> = fc
  .record({
    ids: fc.uniqueArray(stepIdArb, { minLength: 1, maxLength: 6 }),
    groupLens: fc.array(fc.integer({ min: 1, max: 3 }), SIX),
    grouped: fc.array(fc.boolean(), SIX),
    reversed: fc.array(fc.boolean(), SIX),
    plans: fc.array(stepPlanArb, SIX),
    flag: fc.boolean(),
    x: fc.integer(),
    a: fc.string({ maxLength: 8 }),
    workflowId: stepIdArb,
    description: fc.option(fc.string({ maxLength: 30 }), { nil: undefined }),
    parallelKey: fc.boolean(),
  })
  .map(({ ids, groupLens, grouped, reversed, plans, flag, x, a, workflowId, description, parallelKey }) => {
    const n = ids.length;
    const parallel: string[][] = [];
    const stageOf = new Map<string, number>();
    let stage = 0;
    for (let i = 0, k = 0; i < n; k++, stage++) {
      const len = Math.min(groupLens[k % 6], n - i);
      if (grouped[k % 6]) {
        const members = ids.slice(i, i + len);
        parallel.push(reversed[k % 6] ? [...members].reverse() : members);
        for (const id of members) stageOf.set(id, stage);
        i += len;
      } else {
        stageOf.set(ids[i], stage);
        i += 1;
      }
    }
    const input = { x, flag, on: true, obj: { a } };
    const types = new Map<string, string>();
    const steps: Record<string, unknown>[] = [];
    let expected: ValidSpec['expected'] = 'COMPLETED';
    const mustRun: string[] = [];
    ids.forEach((id, i) => {
      const p = plans[i];
      // Steps whose output a template may use: earlier stages, and not fail steps.
      const earlier = ids.filter((o) => stageOf.get(o)! < stageOf.get(id)! && types.get(o) !== 'fail');
      const options = [
        '{{input.x}}', '{{ input.obj.a }}', 'x={{input.x}} a={{input.obj.a}}', '{{execution.id}}', '{{execution.workflowId}}',
        ...earlier.flatMap((e) => [`{{steps.${e}.output}}`, `out of ${e}: {{steps.${e}.output}}`]),
      ];
      const template = (k: number) => options[p.tpl[k] % options.length];
      types.set(id, p.type);
      const step: Record<string, unknown> = { id, type: p.type };
      if (p.type === 'transform') {
        step.value = p.valueForm === 'plain' ? p.plain : p.valueForm === 'template' ? template(0) : { t: template(1), list: [template(2), 1] };
      } else if (p.type === 'sleep') {
        step.durationMs = p.duration;
      } else {
        if (p.message) step.message = p.message.template ? template(0) : p.message.text.replace(/[{}]/g, '');
        if (p.retryable) {
          step.retryable = true;
          step.retry = { maxAttempts: 2, initialDelayMs: 0, backoffRate: 1, maxDelayMs: 0 };
        }
      }
      if (p.onError) step.onError = p.onError;
      if (p.when) step.when = p.when;
      if (p.retry !== undefined && p.type !== 'fail') step.retry = { maxAttempts: p.retry, initialDelayMs: 0 };
      if (p.timeoutMs !== undefined) step.timeoutMs = p.timeoutMs;
      const runs = p.when !== '{{input.flag}}' || flag;
      if (p.type === 'fail' && runs && p.onError !== 'continue') expected = 'FAILED';
      if (runs && p.type !== 'fail') mustRun.push(id);
      steps.push(step);
    });
    const doc: Doc = { id: workflowId, steps, ...(parallel.length || parallelKey ? { parallel } : {}) };
    if (description !== undefined) doc.description = description;
    return { doc, input, expected, mustRun };
  });

/** A structured mutation of a valid definition (most make it invalid; some do not). */
export interface Mutation { name: string; apply: (doc: Doc) => unknown }

const pick = <T>(k: number, xs: T[]): T => xs[k % xs.length];

export const MUTATIONS = [
  'duplicate-id', 'unknown-group-member', 'non-consecutive-group', 'step-in-two-groups', 'empty-group', 'group-not-strings',
  'bad-template', 'forward-template', 'unknown-type', 'wrong-field-type', 'missing-field', 'extra-field', 'replace-node', 'bad-step-id', 'steps-not-array',
] as const;

export const mutationArb: Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom(...MUTATIONS),
  junk: fc.jsonValue({ maxDepth: 2 }),
  r: fc.nat({ max: 1_000_000 }),
  c: fc.nat({ max: 1000 }),
}).map(({ kind, junk, r, c }): Mutation => {
  return {
    name: kind,
    apply: (doc) => {
      const d = structuredClone(doc);
      const steps = d.steps;
      const at = (k: number) => steps[k % steps.length];
      const parallel = (d.parallel ??= []);
      const ids = steps.map((s) => s.id as string);
      switch (kind) {
        case 'duplicate-id':
          if (steps.length < 2) steps.push({ ...steps[0] });
          else at(r + 1).id = at(r).id;
          break;
        case 'unknown-group-member':
          parallel.push([...ids.slice(0, 1), `nope_${r}`]);
          break;
        case 'non-consecutive-group':
          if (steps.length >= 3) { d.parallel = [[ids[0], ids[2]]]; } else { steps.push({ id: `m_${r}`, type: 'transform', value: 1 }, { id: `n_${r}`, type: 'transform', value: 2 }); d.parallel = [[ids[0], `n_${r}`]]; }
          break;
        case 'step-in-two-groups':
          parallel.push([ids[r % ids.length]], [ids[r % ids.length]]);
          break;
        case 'empty-group':
          parallel.push([]);
          break;
        case 'group-not-strings':
          (d as Record<string, unknown>).parallel = [[1, null, { id: ids[0] }]];
          break;
        case 'bad-template': {
          const bad = ['{{', '}}', '{{ }}', '{{input.a b}}', '{{input..x}}', '{{steps}}', '{{steps.nope_zz.output}}', '{{nope.root}}', '{{steps.X.result}}', 'a {{input.x', '{{{input.x}}}', '{{input.x}}}}', '{{input[0]}}', '{{ steps.%s.output.a.b }}', '{{__proto__.x}}', '{{input.constructor}}'];
          const s = at(r);
          const t = pick(c, bad).replace('%s', String(s.id));
          if (s.type === 'transform') s.value = { v: t };
          else if (s.type === 'fail') s.message = t;
          else s.when = t;
          break;
        }
        case 'forward-template': {
          const s = at(0);
          const later = at(r + 1).id === s.id ? s.id : at(r + 1).id;
          s.when = `{{steps.${later}.output}}`;
          break;
        }
        case 'unknown-type':
          at(r).type = pick(c, ['Transform', 'sleepy', '', 'http ', 'llm2', 'signal!', 42, null, true, ['transform'], { type: 'transform' }]);
          break;
        case 'wrong-field-type': {
          const s = at(r);
          const field = pick(c, ['id', 'durationMs', 'retry', 'onError', 'timeoutMs', 'when', 'message', 'retryable', 'value']);
          s[field] = pick(c, [junk, -1, 1.5, '10', 0, 86_400_001, [], {}, null, 'fail ', { maxAttempts: 0 }, { maxAttempts: '2' }, { initialDelayMs: -5 }, true]);
          if (field === 'durationMs' && s.type !== 'sleep') s.type = 'sleep';
          break;
        }
        case 'missing-field': {
          const what = pick(c, ['id', 'steps', 'step-id', 'step-type', 'durationMs']);
          if (what === 'id') delete d.id;
          else if (what === 'steps') delete (d as Record<string, unknown>).steps;
          else if (what === 'step-id') delete at(r).id;
          else if (what === 'step-type') delete at(r).type;
          else { at(r).type = 'sleep'; delete at(r).durationMs; delete at(r).value; delete at(r).message; delete at(r).retryable; }
          break;
        }
        case 'extra-field':
          if (r % 2) at(r)[`x_${r % 7}`] = junk;
          else (d as Record<string, unknown>)[pick(c, ['extra', 'parallels', 'Steps', 'version'])] = junk;
          break;
        case 'replace-node': {
          // Any value anywhere: the step, a field of it, the id, the whole steps array.
          const where = r % 4;
          if (where === 0) steps[r % steps.length] = junk as Record<string, unknown>;
          else if (where === 1) at(r)[pick(c, Object.keys(at(r)))] = junk;
          else if (where === 2) (d as Record<string, unknown>).id = junk;
          else (d as Record<string, unknown>).parallel = junk;
          break;
        }
        case 'bad-step-id':
          at(r).id = pick(c, ['', '1abc', 'a.b', 'a b', 'a/b', '#x', '(end)', 'é', '-x', 'a*', 'x'.repeat(300) + '!']);
          break;
        case 'steps-not-array':
          (d as Record<string, unknown>).steps = pick(c, [{}, 'a', 1, null, [], { 0: steps[0] }]);
          break;
      }
      return d;
    },
  };
});

/** Arbitrary JSON documents, some shaped like a definition. */
export const arbitraryDocArb: Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.record({ id: fc.oneof(stepIdArb, fc.jsonValue({ maxDepth: 1 })), steps: fc.array(fc.jsonValue({ maxDepth: 3 }), { maxLength: 4 }) }, { requiredKeys: [] }),
  fc.record({
    id: stepIdArb,
    steps: fc.array(fc.record({ id: fc.oneof(stepIdArb, fc.jsonValue({ maxDepth: 1 })), type: fc.oneof(fc.constantFrom('transform', 'sleep', 'fail', 'signal', 'http', 'llm'), fc.string()), value: fc.jsonValue({ maxDepth: 2 }), durationMs: fc.jsonValue({ maxDepth: 1 }) }, { requiredKeys: [] }), { maxLength: 4 }),
    parallel: fc.jsonValue({ maxDepth: 3 }),
  }, { requiredKeys: ['steps'] }),
);

/**
 * A valid definition where some steps wait for a signal instead (for the pure
 * machine walk; never run on an engine, where nobody would send the signal).
 */
export const validWithSignalsArb: Arbitrary<Doc> = fc.tuple(validSpecArb, fc.array(fc.boolean(), { minLength: 6, maxLength: 6 }), fc.array(fc.option(stepIdArb, { nil: undefined }), { minLength: 6, maxLength: 6 })).map(([spec, flip, names]) => {
  const doc = structuredClone(spec.doc);
  const used = new Set<string>();
  const referenced = JSON.stringify(doc.steps);
  doc.steps = doc.steps.map((s, i) => {
    const id = s.id as string;
    // A step another template reads keeps its type (a signal's output is its payload: fine too, but keep it simple).
    if (!flip[i] || referenced.includes(`steps.${id}.`)) return s;
    const name = names[i] ?? id;
    if (used.has(name)) return s;
    used.add(name);
    return { id, type: 'signal', ...(names[i] !== undefined ? { name } : {}), ...(s.when ? { when: s.when } : {}) };
  });
  return doc;
});

/**
 * fc.check parameters: a bounded number of runs (no fixed seed), and a time cap that also bounds
 * shrinking. The cap is generous (a shared, loaded machine): a run it stops before half of
 * numRuns fails (checkProperty).
 */
export const bounded = (numRuns: number, timeLimitMs = 60_000) => ({ numRuns, plugins: [fc.interruptAfterTimeLimit(timeLimitMs)] });

/**
 * fc.check, then report: how many runs (and shrinks) were tried goes to the
 * test output; a failure throws fast-check's usual report (seed, path,
 * shrunk counterexample) with the property's own error as the cause. A run
 * its time limit stopped before half of numRuns fails too: it tested too
 * little to count as a pass.
 */
export async function checkProperty<T>(label: string, property: IRawProperty<T>, params: FcParameters<T>): Promise<RunDetails<T>> {
  const details = await fc.check(property, params);
  console.log(`[fuzz] ${label}: ${details.numRuns} runs${details.failed ? ` until a failure, then ${details.numShrinks} shrinks` : ''}${details.interrupted ? ' (stopped at its time limit)' : ''}`);
  if (details.failed) throw new Error(fc.defaultReportMessage(details), { cause: details.errorInstance });
  const minRuns = Math.ceil((params.numRuns ?? 100) / 2);
  if (details.interrupted && details.numRuns < minRuns) {
    throw new Error(`${label}: the time limit stopped it after ${details.numRuns} runs, fewer than the ${minRuns} (half of numRuns) a pass needs`);
  }
  return details;
}
