/**
 * `llm` steps in real executions: a real nats-server (the event log), the
 * built-in `local` provider, and a real HTTP server speaking the
 * chat-completions protocol (fake-openai.ts) standing in for a paid upstream.
 * Everything is read back from the event log: usage and latency on each
 * StepCompleted, failures, cancellation, budgets and resume, replay.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Usage } from '../../machines/index.js';
import { LOCAL_NOTICE, createLlmRouter, type Env } from '../../src/llm/index.js';
import { replayExecution } from '../../src/log/replay.js';
import type { StoredRecord } from '../../src/log/records.js';
import { loadExecution, summarize } from '../../src/log/views.js';
import type { LlmStepResultOutput } from '../../src/steps/llm.js';
import { def, indexOf, stepEvents, types, useEngine } from '../support/engine.js';
import { useNatsServer } from '../support/nats.js';
import { countingLlmExecutors, useFakeOpenAI, waitUntil, type FakeOpenAI } from './llm/support/fake-openai.js';
import { plainContext } from '../support/context.js';

const nats = useNatsServer();
const fx = useEngine(nats);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const upstream = useFakeOpenAI();
let fake: FakeOpenAI;
beforeAll(() => {
  fake = upstream();
});

/** An extra OpenAI-compatible provider `up` pointing at the fake; no router retries, so the step's own retry is what we see. */
const upstreamEnv = (): Env => ({
  SMARTSPEC_LLM_PROVIDERS: 'up',
  SMARTSPEC_LLM_UP_BASE_URL: fake.url,
  SMARTSPEC_LLM_UP_MAX_RETRIES: '0',
  SMARTSPEC_LLM_UP_TIMEOUT_MS: '10000',
});

/** Built-in executors plus llm on a router built from `env`, counting how often each llm step actually ran. */
const llmExecutors = (env: Env = {}) => countingLlmExecutors(createLlmRouter(env));

type Rec = StoredRecord['record'] & { stepId?: string; attempt?: number; output?: any; usage?: Usage; latencyMs?: number; error?: any; retryInMs?: number; budget?: unknown };
const recs = (records: StoredRecord[], type: string, stepId?: string): Rec[] =>
  records.map((r) => r.record as Rec).filter((r) => r.type === type && (stepId === undefined || r.stepId === stepId));
const completed = (records: StoredRecord[], stepId: string) => recs(records, 'StepCompleted', stepId)[0];

function sumUsage(list: (Usage | undefined)[]): Usage {
  return list.reduce<Usage>(
    (a, u) => (u ? { promptTokens: a.promptTokens + u.promptTokens, completionTokens: a.completionTokens + u.completionTokens, totalTokens: a.totalTokens + u.totalTokens } : a),
    { promptTokens: 0, completionTokens: 0, totalTokens: 0 },
  );
}

const lastUser = (body: any): string => [...(body?.messages ?? [])].reverse().find((m: any) => m.role === 'user')?.content ?? '';

describe('llm steps on the local provider', () => {
  it('run a fork-join end to end: outputs say they are not from a model, the join sees every branch, usage and latency are logged and summed', async () => {
    const { executors, runs } = llmExecutors({});
    const engine = await fx.engine(executors);
    const definition = def({
      id: 'llm-forkjoin',
      steps: [
        { id: 'draft', type: 'llm', system: 'Be brief.', prompt: 'Draft a spec for {{input.feature}}' },
        { id: 'security', type: 'llm', json: true, prompt: 'Security review: {{steps.draft.output.text}}' },
        { id: 'perf', type: 'llm', json: true, prompt: 'Performance review: {{steps.draft.output.text}}' },
        { id: 'legal', type: 'llm', json: true, prompt: 'Legal review: {{steps.draft.output.text}}' },
        {
          id: 'merge',
          type: 'llm',
          prompt: 'Merge reviews security={{steps.security.output.json.digest}} perf={{steps.perf.output.json.digest}} legal={{steps.legal.output.json.digest}}',
        },
        { id: 'report', type: 'transform', value: { summary: '{{steps.merge.output.text}}' } },
      ],
      parallel: [['security', 'perf', 'legal']],
    });
    expect(definition.steps[0]).toMatchObject({ model: 'default' }); // the schema's default: the configured default model

    const runner = await engine.start({ definition, input: { feature: 'password reset' } });
    const outcome = await runner.done;
    expect(outcome.status).toBe('COMPLETED');
    const records = await fx.log.read(runner.executionId);

    // Not a model, and saying so.
    const draft = completed(records, 'draft').output as LlmStepResultOutput;
    expect(draft).toMatchObject({ provider: 'local', model: 'echo' });
    expect(draft.text!.startsWith(LOCAL_NOTICE)).toBe(true);
    expect(draft.text).toContain('Draft a spec for password reset');
    const branches = ['security', 'perf', 'legal'];
    for (const id of branches) {
      const out = completed(records, id).output as LlmStepResultOutput;
      expect(out.json).toMatchObject({ notice: LOCAL_NOTICE });
      expect((out.json as { echo: string }).echo).toContain(draft.text!.slice(0, 60)); // each branch saw the draft
    }

    // Fork: the branches all start before any completes; join: merge starts after all three completed and sees all three.
    const lastBranchStart = Math.max(...branches.map((id) => indexOf(records, 'StepStarted', id)));
    const firstBranchDone = Math.min(...branches.map((id) => indexOf(records, 'StepCompleted', id)));
    expect(lastBranchStart).toBeLessThan(firstBranchDone);
    expect(indexOf(records, 'StepStarted', 'merge')).toBeGreaterThan(Math.max(...branches.map((id) => indexOf(records, 'StepCompleted', id))));
    const merge = completed(records, 'merge').output as LlmStepResultOutput;
    for (const id of branches) {
      const digest = ((completed(records, id).output as LlmStepResultOutput).json as { digest: string }).digest;
      expect(merge.text).toContain(`${id}=${digest}`);
    }
    expect(plainContext(outcome.snapshot.context).outputs.report).toEqual({ summary: merge.text });

    // Usage and latency on every llm StepCompleted (and only there), equal to what the provider reported.
    const llmIds = ['draft', ...branches, 'merge'];
    for (const id of llmIds) {
      const rec = completed(records, id);
      expect(rec.usage!.totalTokens).toBeGreaterThan(0);
      expect(rec.usage!.totalTokens).toBe(rec.usage!.promptTokens + rec.usage!.completionTokens);
      expect(rec.usage).toEqual(rec.output.usage);
      expect(rec.latencyMs).toEqual(expect.any(Number));
      expect(rec.latencyMs).toBeGreaterThanOrEqual(0);
    }
    expect(completed(records, 'report').usage).toBeUndefined();
    const summary = summarize(await loadExecution(fx.log, runner.executionId));
    expect(summary.usage).toEqual(sumUsage(llmIds.map((id) => completed(records, id).usage)));
    expect(summary.usage.totalTokens).toBeGreaterThan(0);

    for (const id of llmIds) expect(runs.get(id)).toBe(1);
    expect(replayExecution(runner.executionId, records).ok).toBe(true);
  });
});

describe('llm steps against an OpenAI-protocol upstream', () => {
  it("record the upstream's reported usage, send the resolved prompts, and hand every branch's text to the join", async () => {
    // Usage per step, told apart by a marker at the start of each prompt.
    const usageFor: Record<string, { prompt_tokens: number; completion_tokens: number; total_tokens: number }> = {
      draft: { prompt_tokens: 111, completion_tokens: 22, total_tokens: 133 },
      a: { prompt_tokens: 201, completion_tokens: 31, total_tokens: 232 },
      b: { prompt_tokens: 302, completion_tokens: 41, total_tokens: 343 },
      join: { prompt_tokens: 403, completion_tokens: 51, total_tokens: 454 },
    };
    fake.setReply((body) => {
      const marker = /^\[(\w+)\]/.exec(lastUser(body))![1];
      return { type: 'completion', content: `answer for ${marker}: ${lastUser(body).length} chars read`, usage: usageFor[marker] };
    });
    const { executors } = llmExecutors(upstreamEnv());
    const engine = await fx.engine(executors);
    const definition = def({
      id: 'llm-upstream',
      steps: [
        { id: 'draft', type: 'llm', model: 'up/gpt-fake', system: 'You write specs.', prompt: '[draft] spec for {{input.feature}}', temperature: 0.2 },
        { id: 'a', type: 'llm', model: 'up/gpt-fake', prompt: '[a] review A of: {{steps.draft.output.text}}' },
        { id: 'b', type: 'llm', model: 'up/gpt-fake', prompt: '[b] review B of: {{steps.draft.output.text}}' },
        { id: 'join', type: 'llm', model: 'up/gpt-fake', prompt: '[join] A said <{{steps.a.output.text}}> B said <{{steps.b.output.text}}>' },
      ],
      parallel: [['a', 'b']],
    });
    const runner = await engine.start({ definition, input: { feature: 'exports' } });
    expect((await runner.done).status).toBe('COMPLETED');
    const records = await fx.log.read(runner.executionId);

    for (const [id, u] of Object.entries(usageFor)) {
      const rec = completed(records, id);
      const expected = { promptTokens: u.prompt_tokens, completionTokens: u.completion_tokens, totalTokens: u.total_tokens };
      expect(rec.usage).toEqual(expected);
      expect(rec.output).toMatchObject({ provider: 'up', model: 'gpt-fake', usage: expected });
      expect(rec.output.text).toMatch(new RegExp(`^answer for ${id}: \\d+ chars read$`));
      expect(rec.latencyMs).toEqual(expect.any(Number));
    }
    const summary = summarize(await loadExecution(fx.log, runner.executionId));
    expect(summary.usage).toEqual({ promptTokens: 1017, completionTokens: 145, totalTokens: 1162 });

    // What the upstream received: the real model name, system + resolved prompt, and the join saw both branches in full.
    expect(fake.chatRequests).toHaveLength(4);
    const bodies = Object.fromEntries(fake.chatRequests.map((r) => [/^\[(\w+)\]/.exec(lastUser(r.body))![1], r.body]));
    expect(bodies.draft).toMatchObject({ model: 'gpt-fake', temperature: 0.2, messages: [{ role: 'system', content: 'You write specs.' }, { role: 'user', content: '[draft] spec for exports' }] });
    expect(lastUser(bodies.a)).toBe(`[a] review A of: ${completed(records, 'draft').output.text}`);
    expect(lastUser(bodies.join)).toBe(`[join] A said <${completed(records, 'a').output.text}> B said <${completed(records, 'b').output.text}>`);
    expect(replayExecution(runner.executionId, records).ok).toBe(true);
  });

  it('fail a json step whose answer is not JSON, keeping the raw text, and do not retry it', async () => {
    const raw = 'Sure! Here is the JSON you asked for: {"risk": high';
    fake.enqueue({ type: 'completion', content: raw });
    const { executors, runs } = llmExecutors(upstreamEnv());
    const engine = await fx.engine(executors);
    const runner = await engine.start({
      definition: def({
        id: 'llm-bad-json',
        steps: [{ id: 'extract', type: 'llm', model: 'up/gpt-fake', json: true, prompt: 'List the risks', retry: { maxAttempts: 3, initialDelayMs: 10 } }],
      }),
    });
    expect((await runner.done).status).toBe('FAILED');
    const records = await fx.log.read(runner.executionId);
    const failed = recs(records, 'StepFailed', 'extract');
    expect(failed).toHaveLength(1); // invalid JSON is not retryable: the step's retry policy does not repeat it
    expect(failed[0].error).toMatchObject({ code: 'LLM_INVALID_JSON', retryable: false, details: { raw, rawLength: raw.length, provider: 'up', model: 'gpt-fake' } });
    expect(failed[0].retryInMs).toBeUndefined();
    expect(records.at(-1)!.record).toMatchObject({ type: 'ExecutionFailed', stepId: 'extract', error: { code: 'LLM_INVALID_JSON' } });
    expect(runs.get('extract')).toBe(1);
    // json mode was asked of the upstream, with an instruction mentioning JSON (OpenAI requires one)
    expect(fake.chatRequests[0].body.response_format).toEqual({ type: 'json_object' });
    expect(JSON.stringify(fake.chatRequests[0].body.messages)).toMatch(/JSON/);
    expect(replayExecution(runner.executionId, records).ok).toBe(true);
  });

  it("retry a transient upstream failure with the step's retry policy, and fail a rejection at once", async () => {
    fake.enqueue({ type: 'error', status: 503, message: 'overloaded' });
    const { executors, runs } = llmExecutors(upstreamEnv());
    const engine = await fx.engine(executors);
    const retry = { maxAttempts: 3, initialDelayMs: 25 };
    const runner = await engine.start({ definition: def({ id: 'llm-retry', steps: [{ id: 'ask', type: 'llm', model: 'up/gpt-fake', prompt: 'hello', retry }] }) });
    expect((await runner.done).status).toBe('COMPLETED');
    const records = await fx.log.read(runner.executionId);
    const [failed] = recs(records, 'StepFailed', 'ask');
    expect(failed).toMatchObject({ attempt: 1, retryInMs: 25, error: { code: 'LLM_UPSTREAM_ERROR', retryable: true, details: { provider: 'up', status: 503 } } });
    expect(failed.error.details.attempts).toHaveLength(1); // the router's own attempts are in the record
    expect(recs(records, 'StepStarted', 'ask').map((r) => r.attempt)).toEqual([1, 2]);
    expect(completed(records, 'ask')).toMatchObject({ attempt: 2, usage: { totalTokens: expect.any(Number) } });
    expect(runs.get('ask')).toBe(2);
    expect(fake.chatRequests).toHaveLength(2);

    fake.requests.length = 0;
    fake.enqueue({ type: 'error', status: 400, message: 'bad request: temperature' });
    const rejected = await engine.start({ definition: def({ id: 'llm-reject', steps: [{ id: 'ask', type: 'llm', model: 'up/gpt-fake', prompt: 'hello', retry }] }) });
    expect((await rejected.done).status).toBe('FAILED');
    const rr = await fx.log.read(rejected.executionId);
    expect(recs(rr, 'StepFailed', 'ask')).toHaveLength(1);
    expect(recs(rr, 'StepFailed', 'ask')[0]).toMatchObject({ error: { code: 'LLM_UPSTREAM_REJECTED', retryable: false, details: { status: 400 } } });
    expect(fake.chatRequests).toHaveLength(1);
  });

  it('abort the in-flight request when the execution is cancelled, and record ExecutionCancelled', async () => {
    fake.setReply({ type: 'hang' });
    const { executors } = llmExecutors(upstreamEnv());
    const engine = await fx.engine(executors);
    const runner = await engine.start({
      definition: def({ id: 'llm-cancel', steps: [{ id: 'slow', type: 'llm', model: 'up/gpt-fake', prompt: 'take your time' }, { id: 'after', type: 'transform', value: 1 }] }),
    });
    await waitUntil(() => fake.chatRequests.length === 1, 5000, 'the llm request to arrive');
    expect(fake.chatRequests[0].closedEarly).toBe(false);
    const started = Date.now();
    await engine.cancel(runner.executionId, 'user gave up');
    const outcome = await runner.done;
    expect(outcome.status).toBe('CANCELLED');
    await waitUntil(() => fake.chatRequests[0].closedEarly, 5000, 'the upstream to see the request closed');
    expect(Date.now() - started).toBeLessThan(3000);

    const records = await fx.log.read(runner.executionId);
    expect(types(records)).toEqual(['ExecutionStarted', 'StepStarted', 'ExecutionCancelled']);
    expect(records.at(-1)!.record).toMatchObject({ type: 'ExecutionCancelled', reason: 'user gave up' });
    expect(replayExecution(runner.executionId, records).ok).toBe(true);
  });

  it("abort the in-flight request when the step's timeoutMs passes", async () => {
    fake.setReply({ type: 'hang' });
    const { executors } = llmExecutors(upstreamEnv());
    const engine = await fx.engine(executors);
    const runner = await engine.start({ definition: def({ id: 'llm-timeout', steps: [{ id: 'slow', type: 'llm', model: 'up/gpt-fake', prompt: 'hello', timeoutMs: 300 }] }) });
    expect((await runner.done).status).toBe('FAILED');
    await waitUntil(() => fake.chatRequests[0]?.closedEarly === true, 5000, 'the upstream to see the request closed');
    const records = await fx.log.read(runner.executionId);
    expect(recs(records, 'StepFailed', 'slow')[0].error).toMatchObject({ code: 'TIMEOUT', retryable: true });
  });
});

describe('token budgets', () => {
  it('stop before an llm step once the budget is spent, then continue after a resume with a bigger budget, without re-running the first step', async () => {
    fake.setReply({ type: 'completion', usage: { prompt_tokens: 30, completion_tokens: 30, total_tokens: 60 } });
    const { executors, runs } = llmExecutors(upstreamEnv());
    const engine = await fx.engine(executors);
    const definition = def({
      id: 'llm-budget',
      budget: { maxTokens: 50 },
      steps: [
        { id: 'first', type: 'llm', model: 'up/gpt-fake', prompt: 'Draft something short' },
        { id: 'between', type: 'transform', value: { draft: '{{steps.first.output.text}}' } },
        { id: 'second', type: 'llm', model: 'up/gpt-fake', prompt: 'Improve: {{steps.first.output.text}}' },
      ],
    });
    const runner = await engine.start({ definition });
    expect((await runner.done).status).toBe('FAILED');
    let records = await fx.log.read(runner.executionId);
    // The completion was capped to what the budget left after the prompt.
    expect(fake.chatRequests[0].body.max_tokens).toBeGreaterThan(0);
    expect(fake.chatRequests[0].body.max_tokens).toBeLessThan(50);
    // The upstream went over anyway (60 of 50): the second llm step is refused before it starts.
    expect(stepEvents(records, 'StepStarted')).toEqual(['first', 'between']);
    const [refused] = recs(records, 'StepFailed', 'second');
    expect(refused.error).toMatchObject({ code: 'BUDGET_EXCEEDED', retryable: false, details: { maxTokens: 50, usedTokens: 60 } });
    expect(records.at(-1)!.record).toMatchObject({ type: 'ExecutionFailed', stepId: 'second', error: { code: 'BUDGET_EXCEEDED' } });
    expect(summarize(await loadExecution(fx.log, runner.executionId))).toMatchObject({ status: 'FAILED', usage: { totalTokens: 60 }, budget: { maxTokens: 50 } });
    expect(fake.chatRequests).toHaveLength(1);

    const resumed = await engine.resume(runner.executionId, { budget: { maxTokens: 1000 } });
    expect((await resumed.done).status).toBe('COMPLETED');
    records = await fx.log.read(runner.executionId);
    expect(recs(records, 'ExecutionResumed')[0]).toMatchObject({ budget: { maxTokens: 1000 } });
    expect(fake.chatRequests).toHaveLength(2); // only `second` went upstream again
    expect(runs.get('first')).toBe(1);
    expect(runs.get('second')).toBe(1);
    expect(stepEvents(records, 'StepStarted')).toEqual(['first', 'between', 'second']);
    expect(lastUser(fake.chatRequests[1].body)).toBe(`Improve: ${completed(records, 'first').output.text}`);
    expect(summarize(await loadExecution(fx.log, runner.executionId))).toMatchObject({
      status: 'COMPLETED',
      usage: { promptTokens: 60, completionTokens: 60, totalTokens: 120 },
      budget: { maxTokens: 1000 },
    });

    const report = replayExecution(runner.executionId, records);
    expect(report.events.filter((e) => !e.ok)).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('refuse an llm step whose prompt alone does not fit in what remains, without calling the upstream', async () => {
    fake.setReply({ type: 'completion', usage: { prompt_tokens: 20, completion_tokens: 20, total_tokens: 40 } });
    const { executors } = llmExecutors(upstreamEnv());
    const engine = await fx.engine(executors);
    const runner = await engine.start({
      definition: def({
        id: 'llm-budget-prompt',
        budget: { maxTokens: 60 },
        steps: [
          { id: 'first', type: 'llm', model: 'up/gpt-fake', prompt: 'short' },
          { id: 'second', type: 'llm', model: 'up/gpt-fake', prompt: `${'many words here '.repeat(20)}{{steps.first.output.text}}` },
        ],
      }),
    });
    expect((await runner.done).status).toBe('FAILED');
    const records = await fx.log.read(runner.executionId);
    expect(stepEvents(records, 'StepStarted')).toEqual(['first', 'second']);
    expect(recs(records, 'StepFailed', 'second')[0].error).toMatchObject({ code: 'BUDGET_EXCEEDED', details: { remainingTokens: 20, neededTokens: expect.any(Number) } });
    expect(fake.chatRequests).toHaveLength(1);
  });
});

describe('the CLI', () => {
  /** The parent's environment without any LLM configuration, plus `extra`. */
  function cliEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^(OPENAI_|OLLAMA_|SMARTSPEC_LLM_)/.test(k)) env[k] = v;
    return { ...env, NATS_URL: nats.url, ...extra };
  }
  function runCli(args: string[], extra: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      execFile(process.execPath, ['bin/smartspec.mjs', ...args], { cwd: ROOT, env: cliEnv(extra), timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }
  const executionIdOf = (stdout: string) => /^execution (\S+) \(workflow llm-spec-review\)/m.exec(stdout)![1];

  it('runs examples/llm-review.json offline on the local provider', async () => {
    const { code, stdout, stderr } = await runCli(['run', 'examples/llm-review.json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^COMPLETED in /m);
    expect(stdout).toContain(LOCAL_NOTICE);
    const loaded = await loadExecution(fx.log, executionIdOf(stdout));
    const summary = summarize(loaded);
    expect(summary.status).toBe('COMPLETED');
    for (const id of ['draft', 'security', 'perf', 'legal', 'merge']) {
      expect(completed(loaded.records, id)).toMatchObject({ usage: { totalTokens: expect.any(Number) }, latencyMs: expect.any(Number), output: { provider: 'local' } });
    }
    expect(summary.usage.totalTokens).toBe(sumUsage(loaded.records.map((r) => (r.record as Rec).usage)).totalTokens);
    // The merge's answer is built from its schema offline.
    expect(completed(loaded.records, 'merge').output.json).toEqual({ summary: expect.any(String), blockers: [expect.any(String)], approved: true });
    expect(replayExecution(summary.executionId, loaded.records).ok).toBe(true);
  }, 60_000);

  it('runs the same file on the openai provider when OPENAI_API_KEY and SMARTSPEC_LLM_DEFAULT_MODEL are set', async () => {
    fake.setReply((body) => ({
      type: 'completion',
      content: body?.response_format?.type === 'json_schema' ? JSON.stringify({ summary: 'fine', blockers: [], approved: true }) : `review of ${lastUser(body).length} chars`,
    }));
    const { code, stdout, stderr } = await runCli(['run', 'examples/llm-review.json'], {
      OPENAI_API_KEY: 'sk-test-key',
      OPENAI_BASE_URL: fake.url,
      SMARTSPEC_LLM_DEFAULT_MODEL: 'openai/gpt-4o-mini',
    });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^COMPLETED in /m);
    expect(fake.chatRequests).toHaveLength(5);
    for (const r of fake.chatRequests) {
      expect(r.body.model).toBe('gpt-4o-mini');
      expect(r.headers.authorization).toBe('Bearer sk-test-key');
    }
    const loaded = await loadExecution(fx.log, executionIdOf(stdout));
    expect(completed(loaded.records, 'merge').output).toMatchObject({ provider: 'openai', model: 'gpt-4o-mini', json: { approved: true } });
  }, 60_000);
});
