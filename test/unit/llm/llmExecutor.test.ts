/** The `llm` step executor on the local provider (no network): output shape, usage for the log, budgets, errors. */
import { describe, expect, it } from 'vitest';
import { validateDefinition } from '../../../src/definition/validate.js';
import { LOCAL_NOTICE, LlmRouter, createLlmRouter } from '../../../src/llm/index.js';
import { cliExecutors } from '../../../src/cli/executors.js';
import { llmExecutor, type LlmStepDefinition } from '../../../src/steps/llm.js';
import type { StepRun } from '../../../src/steps/types.js';

const ZERO = { promptTokens: 0, completionTokens: 0, totalTokens: 0 };

function llmStep(step: Record<string, unknown>): LlmStepDefinition {
  return validateDefinition({ id: 'w', steps: [{ id: 's', type: 'llm', ...step }] }).steps[0] as LlmStepDefinition;
}
function run(step: LlmStepDefinition, over: Partial<StepRun<LlmStepDefinition>> = {}): StepRun<LlmStepDefinition> {
  return { executionId: 'e', workflowId: 'w', step, attempt: 1, signal: new AbortController().signal, usage: ZERO, ...over };
}

describe('llmExecutor', () => {
  const exec = llmExecutor(createLlmRouter({}));

  it('returns text, model, provider and usage as the output, and usage and latency for the StepCompleted record', async () => {
    const result = await exec(run(llmStep({ prompt: 'Draft a spec' })));
    const output = result.output as { text: string };
    expect(output).toMatchObject({ provider: 'local', model: 'echo', usage: result.usage });
    expect(output.text.startsWith(LOCAL_NOTICE)).toBe(true);
    expect(Object.keys(result.usage!).sort()).toEqual(['completionTokens', 'promptTokens', 'totalTokens']);
    expect(result.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it('defaults the model to the `default` alias, which follows SMARTSPEC_LLM_DEFAULT_MODEL', async () => {
    const step = llmStep({ prompt: 'hi' });
    expect(step.model).toBe('default');
    const router = createLlmRouter({ SMARTSPEC_LLM_DEFAULT_MODEL: 'local/echo' });
    expect((await llmExecutor(router)(run(step))).output).toMatchObject({ provider: 'local' });
  });

  it('returns parsed JSON in json mode, and sends a prompt that resolved to an object as JSON', async () => {
    const result = await exec(run({ ...llmStep({ prompt: 'x', json: true }), prompt: { a: 1 } as unknown as string }));
    expect(result.output).toMatchObject({ json: { notice: LOCAL_NOTICE, echo: '{"a":1}' } });
    expect((result.output as { text?: string }).text).toBeUndefined();
  });

  it('refuses to start when the budget is spent, and caps the completion to what remains', async () => {
    const step = llmStep({ prompt: 'one two three four five six' });
    await expect(exec(run(step, { budget: { maxTokens: 100 }, usage: { ...ZERO, totalTokens: 100 } }))).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED', retryable: false });
    const capped = await exec(run(step, { budget: { maxTokens: 100 }, usage: { ...ZERO, totalTokens: 90 } }));
    expect(capped.usage!.totalTokens).toBeLessThanOrEqual(10);
  });

  it('keeps SmartSpecErrors as they are and codes anything else', async () => {
    await expect(exec(run(llmStep({ model: 'nope/missing', prompt: 'x' })))).rejects.toMatchObject({ code: 'LLM_MODEL_NOT_FOUND' });
    await expect(exec(run({ ...llmStep({ prompt: 'x' }), model: 42 as unknown as string }))).rejects.toMatchObject({ code: 'LLM_MODEL_NOT_FOUND' });
    const aborted = new AbortController();
    aborted.abort();
    await expect(exec(run(llmStep({ prompt: 'x' }), { signal: aborted.signal }))).rejects.toMatchObject({ code: 'LLM_CANCELLED' });
    const broken = { complete: async () => { throw new TypeError('boom'); } } as unknown as LlmRouter;
    await expect(llmExecutor(broken)(run(llmStep({ prompt: 'x' })))).rejects.toMatchObject({ code: 'LLM_ERROR', retryable: false });
  });

  it('calls a router factory only when an llm step runs', async () => {
    let built = 0;
    const lazy = llmExecutor(() => { built++; return createLlmRouter({}); });
    expect(built).toBe(0);
    await lazy(run(llmStep({ prompt: 'x' })));
    expect(built).toBe(1);
  });
});

describe('cliExecutors', () => {
  it('includes llm on the environment\'s providers; a broken LLM configuration fails llm steps, not the process', async () => {
    const ok = cliExecutors({});
    expect(Object.keys(ok).sort()).toEqual(['fail', 'http', 'llm', 'transform']);
    expect((await ok.llm!(run(llmStep({ prompt: 'x' })))).output).toMatchObject({ provider: 'local' });

    const broken = cliExecutors({ SMARTSPEC_LLM_PROVIDERS: 'groq' }); // no SMARTSPEC_LLM_GROQ_BASE_URL
    await expect(broken.llm!(run(llmStep({ prompt: 'x' })))).rejects.toMatchObject({ code: 'LLM_CONFIG_INVALID', message: expect.stringContaining('SMARTSPEC_LLM_GROQ_BASE_URL') });
  });
});
