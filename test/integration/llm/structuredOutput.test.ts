/**
 * `llm` steps with `schema` and `fallbackModels`, run by the engine on a real
 * nats-server against a real HTTP server speaking the chat-completions protocol
 * (fake-openai.ts, standing in for a paid upstream). What the upstream received
 * (request bodies, messages, models in order) and what the log recorded
 * (outputs, attempts, errors, usage) are both asserted.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Usage } from '../../../machines/index.js';
import { createLlmRouter, followUp, type Env, type LlmStepAttempt } from '../../../src/llm/index.js';
import { replayExecution } from '../../../src/log/replay.js';
import type { StoredRecord } from '../../../src/log/records.js';
import { loadExecution, summarize } from '../../../src/log/views.js';
import { Engine } from '../../../src/worker/engine.js';
import { def, useEngine } from '../../support/engine.js';
import { useNatsServer } from '../../support/nats.js';
import { countingLlmExecutors, useFakeOpenAI, type FakeOpenAI } from './support/fake-openai.js';

const nats = useNatsServer();
const fx = useEngine(nats);

const upstream = useFakeOpenAI();
let fake: FakeOpenAI;
beforeAll(() => {
  fake = upstream();
});

/** Two providers on the same server: `up` takes json_schema, `plain` does not. No router retries: each call is one request. */
const env: Env = {
  SMARTSPEC_LLM_PROVIDERS: 'up,plain',
  SMARTSPEC_LLM_UP_BASE_URL: '',
  SMARTSPEC_LLM_UP_MAX_RETRIES: '0',
  SMARTSPEC_LLM_PLAIN_MAX_RETRIES: '0',
  SMARTSPEC_LLM_PLAIN_STRUCTURED_OUTPUTS: 'false',
};
const executors = () => countingLlmExecutors(createLlmRouter({ ...env, SMARTSPEC_LLM_UP_BASE_URL: fake.url, SMARTSPEC_LLM_PLAIN_BASE_URL: fake.url }));

const CATEGORY = { type: 'object', properties: { category: { enum: ['billing', 'bug', 'other'] } }, required: ['category'] };
const answer = (content: string, total = 20) => ({ type: 'completion' as const, content, usage: { prompt_tokens: total - 5, completion_tokens: 5, total_tokens: total } });

type Rec = StoredRecord['record'] & { stepId?: string; output?: any; usage?: Usage; error?: any; retryInMs?: number };
const recs = (records: StoredRecord[], type: string, stepId?: string): Rec[] =>
  records.map((r) => r.record as Rec).filter((r) => r.type === type && (stepId === undefined || r.stepId === stepId));
const completed = (records: StoredRecord[], stepId: string) => recs(records, 'StepCompleted', stepId)[0];
const pick = (attempts: LlmStepAttempt[]) => attempts.map(({ ask, provider, model, ok, status, code, invalid }) => ({ ask, provider, model, ok, status, code, invalid }));

async function run(definition: unknown, input?: unknown) {
  const { executors: ex, runs } = executors();
  const engine = await fx.engine(ex);
  const runner = await engine.start({ definition: def(definition), input });
  const outcome = await runner.done;
  const records = await fx.log.read(runner.executionId);
  return { outcome, records, runs, executionId: runner.executionId };
}

describe('llm steps with a schema', () => {
  it('ask for structured output where the provider supports it, record output.json, and let later steps read it; replay verifies', async () => {
    fake.enqueue(answer('{"category":"bug"}', 42));
    const { outcome, records, executionId } = await run(
      {
        id: 'classify-e2e',
        steps: [
          { id: 'classify', type: 'llm', model: 'up/gpt-fake', prompt: 'Classify: {{input.text}}', schema: CATEGORY },
          { id: 'route', type: 'transform', value: { category: '{{steps.classify.output.json.category}}' } },
        ],
      },
      { text: 'the app crashes on save' },
    );
    expect(outcome.status).toBe('COMPLETED');

    // The upstream was asked for json_schema, named after the step, with the schema as given.
    expect(fake.chatRequests).toHaveLength(1);
    const body = fake.chatRequests[0].body;
    expect(body.response_format).toEqual({ type: 'json_schema', json_schema: { name: 'classify', schema: CATEGORY } });
    expect(body.messages.at(-1)).toEqual({ role: 'user', content: 'Classify: the app crashes on save' });

    const rec = completed(records, 'classify');
    expect(rec.output).toMatchObject({ json: { category: 'bug' }, text: '{"category":"bug"}', provider: 'up', model: 'gpt-fake' });
    expect(pick(rec.output.attempts)).toEqual([{ ask: 1, provider: 'up', model: 'gpt-fake', ok: true, status: undefined, code: undefined, invalid: undefined }]);
    expect(rec.usage).toEqual({ promptTokens: 37, completionTokens: 5, totalTokens: 42 });
    expect(completed(records, 'route').output).toEqual({ category: 'bug' });
    expect(replayExecution(executionId, records).ok).toBe(true);
  });

  it('use JSON mode with the schema in the system message where the provider has no structured outputs', async () => {
    fake.enqueue(answer('{"category":"other"}'));
    const { outcome, records } = await run({
      id: 'classify-plain',
      steps: [{ id: 'classify', type: 'llm', model: 'plain/m', system: 'You sort tickets.', prompt: 'Classify: printer on fire', schema: CATEGORY }],
    });
    expect(outcome.status).toBe('COMPLETED');
    const body = fake.chatRequests[0].body;
    expect(body.response_format).toEqual({ type: 'json_object' });
    expect(body.messages).toHaveLength(2);
    expect(body.messages[0].role).toBe('system');
    expect(body.messages[0].content).toMatch(/^You sort tickets\./);
    expect(body.messages[0].content).toContain(JSON.stringify(CATEGORY));
    expect(completed(records, 'classify').output.json).toEqual({ category: 'other' });
  });

  it('re-ask an answer that does not match, with the validation errors in a follow-up, and sum the tokens of both asks into the budget', async () => {
    fake.enqueue(answer('{"category":"refund"}', 30), answer('{"category":"billing"}', 50));
    const { outcome, records, runs, executionId } = await run({
      id: 'classify-reask',
      budget: { maxTokens: 10_000 },
      steps: [{ id: 'classify', type: 'llm', model: 'up/gpt-fake', prompt: 'Classify: double charge', schema: CATEGORY, retry: { maxAttempts: 3, initialDelayMs: 10 } }],
    });
    expect(outcome.status).toBe('COMPLETED');
    expect(runs.get('classify')).toBe(1); // one step attempt, two asks inside it

    expect(fake.chatRequests).toHaveLength(2);
    const [first, second] = fake.chatRequests.map((r) => r.body.messages);
    const problem = '/category must be equal to one of the allowed values: "billing", "bug", "other"';
    expect(second).toEqual([
      ...first,
      { role: 'assistant', content: '{"category":"refund"}' },
      { role: 'user', content: followUp([problem]) },
    ]);
    expect(second.at(-1).content).toContain(problem);
    expect(fake.chatRequests[1].body.response_format.type).toBe('json_schema');

    const rec = completed(records, 'classify');
    expect(rec.output.json).toEqual({ category: 'billing' });
    expect(pick(rec.output.attempts)).toEqual([
      { ask: 1, provider: 'up', model: 'gpt-fake', ok: true, status: undefined, code: undefined, invalid: [problem] },
      { ask: 2, provider: 'up', model: 'gpt-fake', ok: true, status: undefined, code: undefined, invalid: undefined },
    ]);
    // Both asks' tokens: on the record, in the output, and in the execution's total the budget is checked against.
    expect(rec.usage).toEqual({ promptTokens: 25 + 45, completionTokens: 10, totalTokens: 80 });
    expect(rec.output.usage).toEqual(rec.usage);
    expect(summarize(await loadExecution(fx.log, executionId)).usage).toEqual(rec.usage);
  });

  it('re-ask an answer that is not JSON at all', async () => {
    fake.enqueue(answer('It is a bug.'), answer('{"category":"bug"}'));
    const { outcome, records } = await run({
      id: 'classify-notjson',
      steps: [{ id: 'classify', type: 'llm', model: 'up/gpt-fake', prompt: 'Classify: crash', schema: CATEGORY, retry: { maxAttempts: 2 } }],
    });
    expect(outcome.status).toBe('COMPLETED');
    expect(fake.chatRequests[1].body.messages.at(-1).content).toMatch(/^Your answer does not match the required JSON Schema:\n- \(answer\) model output is not valid JSON/);
    expect(completed(records, 'classify').output.json).toEqual({ category: 'bug' });
  });

  it('fail with LLM_SCHEMA_MISMATCH once retry.maxAttempts asks are spent, without a step retry on top', async () => {
    fake.setReply(answer('{"category":"refund"}'));
    const { outcome, records, runs } = await run({
      id: 'classify-exhausted',
      steps: [{ id: 'classify', type: 'llm', model: 'up/gpt-fake', prompt: 'Classify: refund please', schema: CATEGORY, retry: { maxAttempts: 3, initialDelayMs: 10 } }],
    });
    expect(outcome.status).toBe('FAILED');
    expect(fake.chatRequests).toHaveLength(3);
    expect(runs.get('classify')).toBe(1);
    const failed = recs(records, 'StepFailed', 'classify');
    expect(failed).toHaveLength(1);
    expect(failed[0].retryInMs).toBeUndefined();
    expect(failed[0].error).toMatchObject({
      code: 'LLM_SCHEMA_MISMATCH',
      retryable: false,
      message: expect.stringContaining('in 3 asks'),
      details: { asks: 3, raw: '{"category":"refund"}', problems: ['/category must be equal to one of the allowed values: "billing", "bug", "other"'] },
    });
    expect(failed[0].error.details.attempts.map((a: LlmStepAttempt) => a.ask)).toEqual([1, 2, 3]);
    expect(failed[0].error.details.usage).toEqual({ promptTokens: 45, completionTokens: 15, totalTokens: 60 });
    // The failed asks' tokens are spent: on the record, and in the execution's total the budget is checked against.
    expect(failed[0].usage).toEqual({ promptTokens: 45, completionTokens: 15, totalTokens: 60 });
    expect(summarize(await loadExecution(fx.log, records[0].record.executionId)).usage).toEqual({ promptTokens: 45, completionTokens: 15, totalTokens: 60 });
    expect(records.at(-1)!.record).toMatchObject({ type: 'ExecutionFailed', error: { code: 'LLM_SCHEMA_MISMATCH' } });
  });

  it('stop re-asking when the budget cannot fit another ask', async () => {
    fake.setReply(answer('{"category":"refund"}', 60));
    const { outcome, records } = await run({
      id: 'classify-budget',
      budget: { maxTokens: 100 },
      steps: [{ id: 'classify', type: 'llm', model: 'up/gpt-fake', prompt: 'Classify: refund please', schema: CATEGORY, retry: { maxAttempts: 5 } }],
    });
    expect(outcome.status).toBe('FAILED');
    expect(fake.chatRequests).toHaveLength(1); // 60 of 100 spent; the re-ask's prompt alone does not fit in 40
    expect(recs(records, 'StepFailed', 'classify')[0].error).toMatchObject({ code: 'BUDGET_EXCEEDED', details: { usage: { totalTokens: 60 }, attempts: [{ ask: 1, invalid: expect.any(Array) }] } });
  });

  it('resolve a secret in the prompt of a step whose schema shows braces', async () => {
    fake.enqueue(answer('{"category":"billing"}'));
    const { executors: ex } = executors();
    const engine = await Engine.create({ nc: fx.nc, log: fx.log, executors: ex, secrets: { get: async (name) => `value-of-${name}` } });
    try {
      const schema = { ...CATEGORY, description: 'Answer like {"category": …}; a lone {{ is text' };
      const runner = await engine.start({ definition: def({ id: 'classify-secret', steps: [{ id: 'classify', type: 'llm', model: 'up/gpt-fake', prompt: 'Account {{secrets.ACCOUNT}}: classify', schema }] }) });
      expect((await runner.done).status).toBe('COMPLETED');
      expect(fake.chatRequests[0].body.messages.at(-1).content).toBe('Account value-of-ACCOUNT: classify');
      expect(fake.chatRequests[0].body.response_format.json_schema.schema).toEqual(schema);
    } finally {
      await engine.close();
    }
  });
});

describe('llm steps with fallbackModels', () => {
  it('try the next model after a retryable 429 and 5xx, in order, and record every attempt with its model', async () => {
    fake.enqueue({ type: 'error', status: 429, message: 'slow down' }, { type: 'error', status: 503, message: 'overloaded' }, answer('{"category":"bug"}'));
    const { outcome, records } = await run({
      id: 'fallback',
      steps: [{ id: 'classify', type: 'llm', model: 'up/first', fallbackModels: ['up/second', 'plain/third'], prompt: 'Classify: crash', schema: CATEGORY }],
    });
    expect(outcome.status).toBe('COMPLETED');
    expect(fake.chatRequests.map((r) => r.body.model)).toEqual(['first', 'second', 'third']);
    // Each provider is asked the way it supports: `plain` in JSON mode.
    expect(fake.chatRequests.map((r) => r.body.response_format.type)).toEqual(['json_schema', 'json_schema', 'json_object']);
    const out = completed(records, 'classify').output;
    expect(out).toMatchObject({ provider: 'plain', model: 'third', json: { category: 'bug' } });
    expect(pick(out.attempts)).toEqual([
      { ask: 1, provider: 'up', model: 'first', ok: false, status: 429, code: 'LLM_RATE_LIMITED', invalid: undefined },
      { ask: 1, provider: 'up', model: 'second', ok: false, status: 503, code: 'LLM_UPSTREAM_ERROR', invalid: undefined },
      { ask: 1, provider: 'plain', model: 'third', ok: true, status: undefined, code: undefined, invalid: undefined },
    ]);
  });

  it('do not fall back on a non-retryable error', async () => {
    fake.enqueue({ type: 'error', status: 400, message: 'bad request: temperature' });
    const { outcome, records } = await run({
      id: 'no-fallback',
      steps: [{ id: 'ask', type: 'llm', model: 'up/first', fallbackModels: ['up/second'], prompt: 'hello', retry: { maxAttempts: 3, initialDelayMs: 10 } }],
    });
    expect(outcome.status).toBe('FAILED');
    expect(fake.chatRequests.map((r) => r.body.model)).toEqual(['first']);
    const failed = recs(records, 'StepFailed', 'ask');
    expect(failed).toHaveLength(1);
    expect(failed[0].error).toMatchObject({ code: 'LLM_UPSTREAM_REJECTED', retryable: false, details: { status: 400 } });
    expect(pick(failed[0].error.details.attempts)).toEqual([{ ask: 1, provider: 'up', model: 'first', ok: false, status: 400, code: 'LLM_UPSTREAM_REJECTED', invalid: undefined }]);
  });

  it('fail when every model failed, with all of them in the record, and leave the rest to the step retry', async () => {
    fake.enqueue({ type: 'error', status: 500 }, { type: 'error', status: 502 }, answer('fine'));
    const { outcome, records } = await run({
      id: 'all-down',
      steps: [{ id: 'ask', type: 'llm', model: 'up/first', fallbackModels: ['up/second'], prompt: 'hello', retry: { maxAttempts: 2, initialDelayMs: 10 } }],
    });
    expect(outcome.status).toBe('COMPLETED');
    expect(fake.chatRequests.map((r) => r.body.model)).toEqual(['first', 'second', 'first']);
    const [failed] = recs(records, 'StepFailed', 'ask');
    expect(failed).toMatchObject({ retryInMs: 10, error: { code: 'LLM_UPSTREAM_ERROR', retryable: true } });
    expect(failed.error.details.attempts.map((a: LlmStepAttempt) => [a.model, a.status])).toEqual([['first', 500], ['second', 502]]);
    expect(completed(records, 'ask').output).toMatchObject({ text: 'fine', model: 'first' });
  });

  it('refuse a fallback model no provider serves before sending anything', async () => {
    const { outcome, records } = await run({
      id: 'bad-fallback',
      steps: [{ id: 'ask', type: 'llm', model: 'up/first', fallbackModels: ['openai/gpt-4o'], prompt: 'hello' }],
    });
    expect(outcome.status).toBe('FAILED');
    expect(fake.chatRequests).toHaveLength(0);
    expect(recs(records, 'StepFailed', 'ask')[0].error).toMatchObject({
      code: 'LLM_MODEL_NOT_FOUND',
      message: expect.stringMatching(/^fallbackModels\[0\]: model 'openai\/gpt-4o' .*set OPENAI_API_KEY/),
      details: { field: 'fallbackModels[0]' },
    });
  });
});

describe('llm steps with a schema on the offline local provider', () => {
  it('answer with a value built from the schema, picking the enum value the prompt mentions; braces in the schema are not templates', async () => {
    const schema = {
      ...CATEGORY,
      description: 'Braces such as {{ or }} in a schema are sent as written',
      properties: { ...CATEGORY.properties, confidence: { type: 'number', minimum: 0.5, maximum: 1, description: '{{not a template}}' } },
      additionalProperties: false,
    };
    const { outcome, records, executionId } = await run(
      {
        id: 'classify-local',
        steps: [
          { id: 'text', type: 'transform', value: '{{input.text}}' },
          { id: 'classify', type: 'llm', model: 'local/echo', prompt: 'Classify: {{steps.text.output}}', schema },
        ],
      },
      { text: 'a bug: the app crashes' },
    );
    expect(outcome.status).toBe('COMPLETED');
    expect(completed(records, 'classify').output).toMatchObject({ provider: 'local', json: { category: 'bug', confidence: 0.5 } });
    expect(fake.chatRequests).toHaveLength(0);
    expect(replayExecution(executionId, records).ok).toBe(true);
  });
});
