/**
 * Fuzzing workflow definitions (fast-check). Random documents — arbitrary
 * JSON, valid definitions, and structured mutations of valid ones (duplicate
 * ids, bad groups, bad templates, unknown types, wrong field types) — never
 * crash the validator or the compiler: each is either accepted (and then
 * compiles, and a sample of them runs to its end on a real engine) or
 * rejected with a DefinitionError whose every issue names a non-empty path.
 * Submitted over HTTP they get a 202 or a 4xx naming a path, never a 5xx.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { applyEvent, compileWorkflow, initialSnapshot, planStages, statusOf, stepPhases, type WorkflowEvent, type WorkflowSnapshot } from '../../machines/index.js';
import { parseDefinition, validateDefinition } from '../../src/definition/validate.js';
import type { Definition } from '../../machines/definition.js';
import { DefinitionError } from '../../src/errors.js';
import { verifyChain } from '../../src/log/records.js';
import { replayExecution } from '../../src/log/replay.js';
import { useEngine } from '../support/engine.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService } from '../support/service.js';
import { arbitraryDocArb, bounded, checkProperty, MUTATIONS, mutationArb, validSpecArb, validWithSignalsArb, type ValidSpec } from './arbitraries.js';
import { plainContext } from '../support/context.js';

const nats = useNatsServer();
const fx = useEngine(nats);
const startService = useService(nats);

type Verdict = { accepted: true; definition: Definition } | { accepted: false; issues: { path: string; message: string }[] };

/** The validator's verdict; anything but a definition or a DefinitionError with paths fails the property. */
function judge(doc: unknown): Verdict {
  let definition: Definition;
  try {
    definition = validateDefinition(doc);
  } catch (err) {
    if (!(err instanceof DefinitionError)) throw new Error(`validateDefinition threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
    expect(err.issues.length).toBeGreaterThan(0);
    for (const issue of err.issues) {
      expect(typeof issue.path, JSON.stringify(issue)).toBe('string');
      expect(issue.path.trim(), JSON.stringify(issue)).not.toBe('');
      expect(issue.message.trim(), JSON.stringify(issue)).not.toBe('');
    }
    return { accepted: false, issues: err.issues };
  }
  // Accepted: it compiles, its initial snapshot exists, and it survives the JSON trip
  // commands and records make (validating again gives the same definition).
  compileWorkflow(definition);
  initialSnapshot('fuzz', definition);
  expect(planStages(definition).flatMap((s) => s.steps.map((st) => st.id))).toEqual(definition.steps.map((s) => s.id));
  expect(validateDefinition(JSON.parse(JSON.stringify(definition)))).toEqual(JSON.parse(JSON.stringify(definition)));
  return { accepted: true, definition };
}

const counts: Record<'arbitrary' | 'valid' | 'mutated' | 'text', { tried: number; accepted: number; rejected: number }> & { walked?: number; yamlWarnings?: number } = { arbitrary: { tried: 0, accepted: 0, rejected: 0 }, valid: { tried: 0, accepted: 0, rejected: 0 }, mutated: { tried: 0, accepted: 0, rejected: 0 }, text: { tried: 0, accepted: 0, rejected: 0 } };
const byMutation = new Map<string, { accepted: number; rejected: number }>();
const RUN_SAMPLE = 40;
const MUTANT_SAMPLE = 15;

/** Definitions for the engine run: valid ones with their expected outcome, and mutants the validator accepts. */
function runnableSample(): { spec?: ValidSpec; doc: unknown; input: unknown }[] {
  const valid = fc.sample(validSpecArb, RUN_SAMPLE).map((spec) => ({ spec, doc: spec.doc as unknown, input: spec.input as unknown }));
  const mutants: { doc: unknown; input: unknown }[] = [];
  for (const [spec, mutation] of fc.sample(fc.tuple(validSpecArb, mutationArb), 1000)) {
    if (mutants.length === MUTANT_SAMPLE) break;
    const doc = mutation.apply(spec.doc);
    const v = judge(doc);
    if (v.accepted && quickToRun(v.definition)) mutants.push({ doc, input: spec.input });
  }
  return [...valid, ...mutants];
}

function tally(kind: 'arbitrary' | 'valid' | 'mutated' | 'text', v: Verdict) {
  counts[kind].tried++;
  counts[kind][v.accepted ? 'accepted' : 'rejected']++;
}

/** Only short transform/sleep/fail steps are run (a mutant may have become a long sleep or an http step). */
const quickToRun = (d: Definition) => d.steps.every((s) => s.type === 'transform' || s.type === 'fail' || (s.type === 'sleep' && typeof s.durationMs === 'number' && s.durationMs <= 20)) && d.steps.every((s) => !s.retry || s.retry.initialDelayMs <= 20);

describe('fuzz: definitions through the validator and the compiler', () => {
  it('arbitrary JSON documents are accepted or rejected with paths, never a crash', async () => {
    await checkProperty('arbitrary JSON documents', fc.property(arbitraryDocArb, (doc) => tally('arbitrary', judge(doc))), bounded(1500));
  }, 90_000);

  it('valid definitions (transform, sleep, fail; groups; templates; tricky ids) are accepted and compile', async () => {
    await checkProperty('valid definitions',
      fc.property(validSpecArb, (spec) => {
        const v = judge(spec.doc);
        tally('valid', v);
        expect(v.accepted ? 'accepted' : `rejected: ${JSON.stringify(v.issues)}`).toBe('accepted');
      }),
      bounded(600),
    );
  }, 90_000);

  it('the machine of a valid definition walks its happy path: each step pending, started, done, in stage order, then completed', async () => {
    let walked = 0;
    await checkProperty('machine walks of valid definitions (some with signal steps)',
      fc.property(fc.oneof(validSpecArb.map((s) => s.doc), validWithSignalsArb), (doc) => {
        const definition = validateDefinition(doc);
        let snap: WorkflowSnapshot = initialSnapshot('walk', definition);
        const cps = new Map<number, WorkflowSnapshot>();
        const step = (event: WorkflowEvent) => {
          expect(snap.can(event), `${JSON.stringify(event)} in ${JSON.stringify(snap.value)}`).toBe(true);
          snap = applyEvent(snap, event, cps, 0);
        };
        step({ type: 'ExecutionStarted', definition, input: {} });
        for (const stage of planStages(definition)) {
          for (const s of stage.steps) expect(stepPhases(snap)[s.id], `${s.id} before it starts, in ${JSON.stringify(snap.value)}`).toBe('pending');
          for (const s of stage.steps) {
            step({ type: 'StepStarted', stepId: s.id, attempt: 1 });
            expect(stepPhases(snap)[s.id], `${s.id} once started, in ${JSON.stringify(snap.value)}`).toBe(s.type === 'signal' ? 'waiting' : 'running');
          }
          for (const s of stage.steps) {
            step(s.type === 'signal'
              ? { type: 'SignalReceived', name: s.name ?? s.id, payload: { from: s.id }, stepId: s.id }
              : { type: 'StepCompleted', stepId: s.id, attempt: 1, output: { from: s.id } });
            expect(stepPhases(snap)[s.id], `${s.id} once completed`).toBe('done');
          }
        }
        expect(snap.value).toEqual({ running: '(end)' });
        for (const s of definition.steps) expect(plainContext(snap.context).outputs[s.id], `output of ${s.id}`).toEqual({ from: s.id });
        step({ type: 'ExecutionCompleted', output: null });
        expect(statusOf(snap)).toBe('COMPLETED');
        walked++;
      }),
      bounded(800),
    );
    counts.walked = walked;
  }, 90_000);

  it('mutated definitions (duplicate ids, bad groups, bad templates, unknown types, wrong field types) never crash', async () => {
    await checkProperty('mutated definitions',
      fc.property(validSpecArb, mutationArb, (spec, mutation) => {
        const doc = mutation.apply(spec.doc);
        const v = judge(doc);
        tally('mutated', v);
        const m = byMutation.get(mutation.name) ?? { accepted: 0, rejected: 0 };
        m[v.accepted ? 'accepted' : 'rejected']++;
        byMutation.set(mutation.name, m);
      }),
      bounded(1500),
    );
    // Every kind of mutation was tried, so the checks below and the property covered each of them.
    expect(MUTATIONS.filter((name) => !byMutation.has(name)), 'mutations never generated').toEqual([]);
    // These mutations always break a definition.
    for (const name of ['duplicate-id', 'unknown-group-member', 'non-consecutive-group', 'step-in-two-groups', 'empty-group', 'group-not-strings', 'forward-template', 'unknown-type', 'bad-step-id', 'steps-not-array']) {
      expect(byMutation.get(name)?.accepted ?? 0, name).toBe(0);
    }
  }, 90_000);

  it('JSON/YAML text (random, and truncated valid definitions) is parsed and judged, never a crash', async () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.tuple(validSpecArb, fc.nat()).map(([s, k]) => { const t = JSON.stringify(s.doc); return t.slice(0, k % (t.length + 1)); }),
      validSpecArb.map((s) => JSON.stringify(s.doc, null, 2)),
    );
    // The yaml package reports odd documents (`%directive`, `!tag`) through process.emitWarning:
    // counted here rather than printed a hundred times.
    const emitWarning = process.emitWarning;
    let warnings = 0;
    process.emitWarning = (() => { warnings++; }) as typeof process.emitWarning;
    try {
      await checkProperty('JSON/YAML texts',
        fc.property(text, (t) => {
          let v: Verdict;
          try {
            const d = parseDefinition(t);
            v = { accepted: true, definition: d };
            compileWorkflow(d);
          } catch (err) {
            if (!(err instanceof DefinitionError)) throw err;
            expect(err.issues.every((i) => i.path.trim() !== '')).toBe(true);
            v = { accepted: false, issues: err.issues };
          }
          tally('text', v);
        }),
        bounded(800),
      );
    } finally {
      process.emitWarning = emitWarning;
      counts.yamlWarnings = warnings;
    }
  }, 90_000);
});

describe('fuzz: accepted definitions run to their end on a real engine', () => {
  it('a sample of the accepted definitions runs to COMPLETED or FAILED as expected, with a verifying history', async () => {
    const runnable = runnableSample();
    expect(runnable.filter((r) => !r.spec).length, 'accepted mutants in the sample').toBeGreaterThan(0);
    const engine = await fx.engine();
    const results = await Promise.all(
      runnable.map(async ({ spec, doc, input }, k) => {
        const definition = validateDefinition(doc);
        const executionId = `fuzz-def-${k}-${Date.now()}`;
        const where = `#${k} ${JSON.stringify(doc)} input ${JSON.stringify(input)}`;
        let status: string;
        try {
          const runner = await engine.start({ definition, input, executionId });
          status = (await Promise.race([runner.done, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('did not end within 10 s')), 10_000))])).status;
        } catch (err) {
          return `${where}: ${(err as Error).message}`;
        }
        const history = await fx.log.read(executionId);
        const types = history.map((r) => r.record.type);
        const problems: string[] = [];
        if (status !== 'COMPLETED' && status !== 'FAILED') problems.push(`ended ${status}`);
        if (spec && status !== spec.expected) problems.push(`ended ${status}, expected ${spec.expected}`);
        if (types.at(-1) !== (status === 'COMPLETED' ? 'ExecutionCompleted' : 'ExecutionFailed')) problems.push(`last record ${types.at(-1)}`);
        if (verifyChain(history).length) problems.push('hash chain broken');
        const replay = replayExecution(executionId, history);
        if (!replay.ok) problems.push(`replay: ${JSON.stringify(replay.events.filter((e) => !e.ok)).slice(0, 300)}`);
        if (spec && status === 'COMPLETED') {
          for (const id of spec.mustRun) {
            const done = history.filter((r) => r.record.type === 'StepCompleted' && (r.record as { stepId?: string }).stepId === id && !(r.record as { skipped?: boolean }).skipped);
            if (done.length !== 1) problems.push(`step ${id} completed ${done.length} times`);
          }
        }
        return problems.length ? `${where}: ${problems.join('; ')}` : undefined;
      }),
    );
    const failures = results.filter(Boolean);
    console.log(`[fuzz definitions] ran ${runnable.length} accepted definitions on a real engine (${runnable.filter((r) => r.spec).length} valid, ${runnable.filter((r) => !r.spec).length} accepted mutants): ${runnable.length - failures.length} ended as expected`);
    expect(failures.slice(0, 3), `${failures.length} of ${runnable.length} runs went wrong`).toEqual([]);
  }, 60_000);
});

describe('fuzz: definitions submitted over HTTP', () => {
  it('POST /executions and POST /workflows answer 202/201 or a 4xx naming a path, never a 5xx', async () => {
    // Edge only: what is accepted is not run here (the engine test above runs a sample).
    const svc = await startService({ edge: true, worker: false });
    const seen = { tried: 0, accepted: 0, rejected: 0 };
    try {
      const doc = fc.oneof(arbitraryDocArb, validSpecArb.map((s) => s.doc), fc.tuple(validSpecArb, mutationArb).map(([s, m]) => m.apply(s.doc)));
      await checkProperty('definitions submitted over HTTP',
        fc.asyncProperty(doc, async (d) => {
          let local: boolean;
          try { validateDefinition(d); local = true; } catch { local = false; }
          const isObject = d !== null && typeof d === 'object' && !Array.isArray(d);

          const r = await http(svc.url, 'POST', '/executions', { definition: d, input: {} });
          seen.tried++;
          expect(r.status, `POST /executions ${JSON.stringify(d)} -> ${r.status} ${r.text.slice(0, 300)}`).toBeLessThan(500);
          if (r.status === 202) {
            seen.accepted++;
            expect(local && isObject, `accepted over HTTP but not by validateDefinition: ${JSON.stringify(d)}`).toBe(true);
          } else if (r.status === 400 && /"__proto__"/.test(JSON.stringify(d))) {
            // The JSON parser refuses a `__proto__` key outright (prototype pollution): a 400 naming it.
            seen.rejected++;
            expect(r.json?.detail, r.text).toMatch(/__proto__/);
          } else {
            seen.rejected++;
            expect(r.status, r.text).toBe(422);
            expect(local && isObject, `rejected over HTTP but accepted by validateDefinition: ${JSON.stringify(d)} -> ${r.text}`).toBe(false);
            expect(Array.isArray(r.json?.errors) && r.json.errors.length > 0, r.text).toBe(true);
            for (const e of r.json.errors) expect(typeof e.path === 'string' && /^(definition|body)\b/.test(e.path), r.text).toBe(true);
          }

          // POST /workflows takes the definition as the body (an object or array: a JSON body must be one).
          if (d !== null && typeof d === 'object') {
            const w = await http(svc.url, 'POST', '/workflows', d);
            expect(w.status, `POST /workflows ${JSON.stringify(d)} -> ${w.status} ${w.text.slice(0, 300)}`).toBeLessThan(500);
            if (w.status === 201) expect(local).toBe(true);
            else if (w.status === 400 && /"__proto__"/.test(JSON.stringify(d))) expect(w.json?.detail, w.text).toMatch(/__proto__/);
            else {
              expect(w.status, w.text).toBe(422);
              expect(Array.isArray(w.json?.errors) && w.json.errors.length > 0 && w.json.errors.every((e: { path?: unknown }) => typeof e.path === 'string' && e.path.trim() !== ''), w.text).toBe(true);
            }
          }
        }),
        bounded(300),
      );
      expect((await http(svc.url, 'GET', '/healthz')).status).toBe(200);
    } finally {
      console.log(`[fuzz definitions] HTTP: ${seen.tried} submissions, ${seen.accepted} accepted (202), ${seen.rejected} rejected (422 with paths)`);
    }
  }, 90_000);
});

// What was tried, for the test output (not an assertion: each test checks its own runs).
afterAll(() => {
  const line = (k: 'arbitrary' | 'valid' | 'mutated' | 'text') => `${k}: ${counts[k].tried} tried, ${counts[k].accepted} accepted, ${counts[k].rejected} rejected`;
  console.log(`[fuzz definitions] (runs and shrinks) ${(['arbitrary', 'valid', 'mutated', 'text'] as const).map(line).join('; ')}`);
  console.log(`[fuzz definitions] machine walks: ${counts.walked ?? 0}; YAML warnings printed by parseDefinition on random text: ${counts.yamlWarnings ?? 0}`);
  console.log(`[fuzz definitions] mutations (accepted/rejected): ${[...byMutation].map(([n, c]) => `${n} ${c.accepted}/${c.rejected}`).join(', ')}`);
});
