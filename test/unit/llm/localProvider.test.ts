import { describe, expect, it } from 'vitest';
import { LOCAL_NOTICE, LocalProvider, countPromptTokens, countTokens, type ProviderRequest } from '../../../src/llm/index.js';

const local = new LocalProvider();
const signal = new AbortController().signal;
const req = (content: string, over: Partial<ProviderRequest> = {}): ProviderRequest => ({
  model: 'echo',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content },
  ],
  ...over,
});

describe('LocalProvider', () => {
  it('answers deterministically, says it is not a model, and echoes the prompt', async () => {
    const a = await local.complete(req('Draft a spec for login'), signal);
    const b = await local.complete(req('Draft a spec for login'), signal);
    expect(a).toEqual(b);
    expect(a.text.startsWith(LOCAL_NOTICE)).toBe(true);
    expect(a.text).toContain('Draft a spec for login');
    expect(a.finishReason).toBe('stop');
    const other = await local.complete(req('Draft a spec for logout'), signal);
    expect(other.text).not.toEqual(a.text);
    // The digest covers the whole prompt, the system message included.
    const otherSystem = await local.complete({ ...req('Draft a spec for login'), messages: [{ role: 'user', content: 'Draft a spec for login' }] }, signal);
    expect(otherSystem.text).not.toEqual(a.text);
  });

  it('counts tokens deterministically so budgets work offline', async () => {
    expect(countTokens('Hello, world! 42 times.')).toBe(7);
    const r = req('one two three');
    const a = await local.complete(r, signal);
    expect(a.usage.promptTokens).toBe(countPromptTokens(r.messages));
    // 'You are terse.' is 4 tokens, 'one two three' 3, plus one per message.
    expect(a.usage.promptTokens).toBe(4 + 1 + 3 + 1);
    expect(a.usage.completionTokens).toBe(countTokens(a.text));
    expect(a.usage.totalTokens).toBe(a.usage.promptTokens + a.usage.completionTokens);
  });

  it('returns valid JSON in json mode', async () => {
    const a = await local.complete(req('Give me {"weird": "input"}', { json: true }), signal);
    const parsed = JSON.parse(a.text);
    expect(parsed).toMatchObject({ notice: LOCAL_NOTICE, echo: 'Give me {"weird": "input"}', words: 4 });
  });

  it('stops at maxTokens with finish reason length', async () => {
    const a = await local.complete(req('a long prompt with many words in it', { maxTokens: 5 }), signal);
    expect(a.usage.completionTokens).toBe(5);
    expect(a.finishReason).toBe('length');
    expect(a.text.startsWith('[local provider')).toBe(true);
  });

  it('streams the same text in several deltas, then finish and usage', async () => {
    const whole = await local.complete(req('stream me please'), signal);
    const parts = [];
    for await (const part of await local.openStream(req('stream me please'), signal)) parts.push(part);
    const deltas = parts.filter((p) => p.type === 'delta');
    expect(deltas.length).toBeGreaterThan(3);
    expect(deltas.map((d) => (d.type === 'delta' ? d.text : '')).join('')).toBe(whole.text);
    expect(parts.at(-2)).toEqual({ type: 'finish', finishReason: 'stop' });
    expect(parts.at(-1)).toEqual({ type: 'usage', usage: whole.usage });
  });

  it('refuses to answer once aborted', async () => {
    const c = new AbortController();
    c.abort();
    await expect(local.complete(req('x'), c.signal)).rejects.toMatchObject({ code: 'LLM_CANCELLED' });
  });
});
