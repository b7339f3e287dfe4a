import { describe, expect, it } from 'vitest';
import {
  BudgetExceededError,
  JSON_INSTRUCTION,
  LOCAL_NOTICE,
  LlmOutputError,
  buildMessages,
  checkBudget,
  createLlmRouter,
  parseJsonOutput,
  runLlmStep,
} from '../../../src/llm/index.js';

// The local provider only: no network anywhere in this file.
const router = createLlmRouter({});

describe('checkBudget', () => {
  it('returns what remains, Infinity without a budget', () => {
    expect(checkBudget(undefined, 1_000_000)).toBe(Infinity);
    expect(checkBudget({ maxTokens: 100 }, 40)).toBe(60);
  });
  it('throws BUDGET_EXCEEDED once the budget is used up', () => {
    expect(() => checkBudget({ maxTokens: 100 }, 100)).toThrow(BudgetExceededError);
    const err = (() => {
      try {
        checkBudget({ maxTokens: 100 }, 130);
      } catch (e) {
        return e as BudgetExceededError;
      }
    })();
    expect(err?.toJSON()).toMatchObject({ code: 'BUDGET_EXCEEDED', retryable: false, details: { maxTokens: 100, usedTokens: 130, remainingTokens: 0 } });
  });
});

describe('runLlmStep (local provider)', () => {
  it('returns text, provider, resolved model, usage and latency', async () => {
    const out = await runLlmStep(router, { model: 'default', system: 'Be brief.', prompt: 'Draft a spec for search' });
    expect(out.text?.startsWith(LOCAL_NOTICE)).toBe(true);
    expect(out.text).toContain('Draft a spec for search');
    expect(out).toMatchObject({ provider: 'local', model: 'echo' });
    expect(out.json).toBeUndefined();
    expect(out.usage.totalTokens).toBe(out.usage.promptTokens + out.usage.completionTokens);
    expect(out.usage.promptTokens).toBe(3 + 1 + 5 + 1);
    expect(out.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('parses the output in json mode', async () => {
    const out = await runLlmStep(router, { model: 'local/echo', prompt: 'List risks' , json: true });
    expect(out.text).toBeUndefined();
    expect(out.json).toMatchObject({ notice: LOCAL_NOTICE, echo: 'List risks' });
  });

  it('caps the completion to the remaining budget, and refuses a prompt that does not fit', async () => {
    const capped = await runLlmStep(router, { model: 'local/echo', prompt: 'one two three four five six' }, { budgetRemaining: 10 });
    expect(capped.usage.promptTokens).toBe(7);
    expect(capped.usage.completionTokens).toBe(3);
    expect(capped.usage.totalTokens).toBeLessThanOrEqual(10);

    await expect(runLlmStep(router, { model: 'local/echo', prompt: 'one two three four five six' }, { budgetRemaining: 7 })).rejects.toMatchObject({
      code: 'BUDGET_EXCEEDED',
      details: { remainingTokens: 7, neededTokens: 8 },
    });
  });

  it('honours the step maxTokens when it is below the budget', async () => {
    const out = await runLlmStep(router, { model: 'local/echo', prompt: 'hello there', maxTokens: 4 }, { budgetRemaining: 1000 });
    expect(out.usage.completionTokens).toBe(4);
  });
});

describe('buildMessages / parseJsonOutput', () => {
  it('adds a JSON instruction only when no message mentions JSON', () => {
    expect(buildMessages({ model: 'm', prompt: 'List risks', json: true })).toEqual([
      { role: 'system', content: JSON_INSTRUCTION },
      { role: 'user', content: 'List risks' },
    ]);
    expect(buildMessages({ model: 'm', system: 'Answer in JSON.', prompt: 'List risks', json: true })[0].content).toBe('Answer in JSON.');
    expect(buildMessages({ model: 'm', system: 'Be kind.', prompt: 'List risks', json: true })[0].content).toBe(`Be kind.\n\n${JSON_INSTRUCTION}`);
    expect(buildMessages({ model: 'm', prompt: 'List risks' })).toEqual([{ role: 'user', content: 'List risks' }]);
  });

  it('parses JSON, tolerating one code fence', () => {
    expect(parseJsonOutput('{"a":1}')).toEqual({ a: 1 });
    expect(parseJsonOutput('```json\n{"a":[1,2]}\n```')).toEqual({ a: [1, 2] });
  });

  it('fails with a non-retryable error carrying the raw text', () => {
    let err: unknown;
    try {
      parseJsonOutput('Sure! Here is the JSON: {a: 1}', { provider: 'p' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LlmOutputError);
    expect(err).toMatchObject({ code: 'LLM_INVALID_JSON', retryable: false, raw: 'Sure! Here is the JSON: {a: 1}', details: { provider: 'p', rawLength: 30 } });
  });
});
