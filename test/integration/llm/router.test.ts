/**
 * The router against real HTTP servers speaking the chat-completions protocol
 * (test/integration/llm/support/fake-openai.ts): routing, retries with
 * Retry-After, fallback, timeout, cancellation, streaming.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  LlmCancelledError,
  LlmOutputError,
  LlmRouter,
  ProviderError,
  createProviders,
  runLlmStep,
  type LlmAttempt,
  type LlmConfigFile,
  type LlmRouterOptions,
} from '../../../src/llm/index.js';
import { startFakeOpenAI, waitUntil, type FakeOpenAI } from './support/fake-openai.js';

let alpha: FakeOpenAI;
let beta: FakeOpenAI;

beforeAll(async () => {
  alpha = await startFakeOpenAI({ name: 'alpha', apiKey: 'alpha-key' });
  beta = await startFakeOpenAI({ name: 'beta' });
});
afterAll(async () => {
  await alpha.close();
  await beta.close();
});
afterEach(() => {
  for (const fake of [alpha, beta]) {
    fake.requests.length = 0;
    fake.setReply({ type: 'completion' });
  }
});

const messages = [{ role: 'user' as const, content: 'hello upstream' }];

/** alpha serves m1 (alias a1), beta serves m2 (alias fast); both take any id through their prefix. */
function makeRouter(over: Partial<LlmConfigFile> = {}, providerOver: { alpha?: object; beta?: object } = {}, options: LlmRouterOptions = {}): LlmRouter {
  const file: LlmConfigFile = {
    providers: [
      { name: 'alpha', baseURL: alpha.url, apiKeyEnv: 'ALPHA_KEY', models: ['m1', '*'], aliases: { a1: 'm1' }, maxRetries: 0, timeoutMs: 5000, ...providerOver.alpha },
      { name: 'beta', baseURL: beta.url, models: ['m2'], aliases: { fast: 'm2' }, maxRetries: 0, timeoutMs: 5000, ...providerOver.beta },
    ],
    ...over,
  };
  return new LlmRouter(createProviders({ ALPHA_KEY: 'alpha-key' }, file), { backoff: { initialDelayMs: 50, factor: 2, maxDelayMs: 1000, jitter: 0 }, ...options });
}

describe('routing', () => {
  it('sends each model to its provider with the real model name and that provider\'s key', async () => {
    const router = makeRouter();
    const viaPrefix = await router.complete({ model: 'alpha/a1', messages });
    expect(viaPrefix).toMatchObject({ provider: 'alpha', model: 'm1', text: '[fake:alpha] model=m1 heard: hello upstream' });
    expect(viaPrefix.usage).toEqual({ promptTokens: 10, completionTokens: 5, totalTokens: 15 });

    const viaAlias = await router.complete({ model: 'fast', messages });
    expect(viaAlias).toMatchObject({ provider: 'beta', model: 'm2' });
    const viaBare = await router.complete({ model: 'm2', messages });
    expect(viaBare.provider).toBe('beta');

    expect(alpha.chatRequests.map((r) => r.body.model)).toEqual(['m1']);
    expect(beta.chatRequests.map((r) => r.body.model)).toEqual(['m2', 'm2']);
    expect(alpha.chatRequests[0].headers.authorization).toBe('Bearer alpha-key');
    expect(viaPrefix.attempts).toEqual([expect.objectContaining({ provider: 'alpha', attempt: 1, ok: true })]);
  });

  it('passes temperature, max tokens and json mode upstream', async () => {
    await makeRouter().complete({ model: 'alpha/m1', messages, temperature: 0.3, maxTokens: 42, json: true });
    expect(alpha.chatRequests[0].body).toMatchObject({ model: 'm1', temperature: 0.3, max_tokens: 42, response_format: { type: 'json_object' } });
  });
});

describe('the openai provider', () => {
  it('talks to OPENAI_BASE_URL with OPENAI_API_KEY, using max_completion_tokens', async () => {
    const router = new LlmRouter(createProviders({ OPENAI_API_KEY: 'alpha-key', OPENAI_BASE_URL: alpha.url, SMARTSPEC_LLM_MAX_RETRIES: '0' }));
    const result = await router.complete({ model: 'openai/gpt-4o-mini', messages, maxTokens: 5 });
    expect(result).toMatchObject({ provider: 'openai', model: 'gpt-4o-mini' });
    expect(alpha.chatRequests[0].headers.authorization).toBe('Bearer alpha-key');
    expect(alpha.chatRequests[0].body).toMatchObject({ model: 'gpt-4o-mini', max_completion_tokens: 5 });
    expect(alpha.chatRequests[0].body.max_tokens).toBeUndefined();
  });

  it('reports an upstream that refuses the key as a non-retryable rejection', async () => {
    const router = new LlmRouter(createProviders({ OPENAI_API_KEY: 'wrong', OPENAI_BASE_URL: alpha.url }));
    await expect(router.complete({ model: 'openai/gpt-4o-mini', messages })).rejects.toMatchObject({ code: 'LLM_UPSTREAM_REJECTED', status: 401, retryable: false });
    expect(alpha.chatRequests).toHaveLength(1);
  });
});

describe('retries and fallback', () => {
  it('falls back to the next provider when the first keeps failing with 500', async () => {
    alpha.setReply({ type: 'error', status: 500 });
    const seen: LlmAttempt[] = [];
    const router = makeRouter({ fallbacks: { 'alpha/m1': ['fast'] } }, { alpha: { maxRetries: 1 } }, { onAttempt: (a) => seen.push(a) });
    const result = await router.complete({ model: 'alpha/m1', messages });
    expect(result).toMatchObject({ provider: 'beta', model: 'm2' });
    expect(result.text).toContain('[fake:beta]');
    expect(alpha.chatRequests).toHaveLength(2);
    expect(beta.chatRequests).toHaveLength(1);
    expect(result.attempts.map((a) => [a.provider, a.attempt, a.ok, a.status])).toEqual([
      ['alpha', 1, false, 500],
      ['alpha', 2, false, 500],
      ['beta', 1, true, undefined],
    ]);
    expect(seen).toEqual(result.attempts);
  });

  it('falls back on connection errors too, and uses SMARTSPEC_LLM_FALLBACK-style `*` chains', async () => {
    const router = new LlmRouter(
      createProviders(
        { SMARTSPEC_LLM_FALLBACK: 'beta/m2' },
        {
          providers: [
            { name: 'dead', baseURL: 'http://127.0.0.1:9/v1', maxRetries: 0 },
            { name: 'beta', baseURL: beta.url, models: ['m2'], maxRetries: 0 },
          ],
        },
      ),
    );
    const result = await router.complete({ model: 'dead/x', messages });
    expect(result.provider).toBe('beta');
    expect(result.attempts[0]).toMatchObject({ provider: 'dead', ok: false, code: 'LLM_CONNECTION_ERROR' });
  });

  it('does not retry or fall back on a 400, and reports it as rejected', async () => {
    alpha.setReply({ type: 'error', status: 400, message: 'bad temperature', errorType: 'invalid_request_error' });
    const router = makeRouter({ fallbacks: { '*': ['fast'] } }, { alpha: { maxRetries: 3 } });
    const err = await router.complete({ model: 'alpha/m1', messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ code: 'LLM_UPSTREAM_REJECTED', status: 400, retryable: false });
    expect((err as Error).message).toContain('bad temperature');
    expect(alpha.chatRequests).toHaveLength(1);
    expect(beta.chatRequests).toHaveLength(0);
  });

  it('waits as long as Retry-After (seconds) says before retrying a 429', async () => {
    alpha.enqueue({ type: 'error', status: 429, headers: { 'retry-after': '1' } });
    const result = await makeRouter({}, { alpha: { maxRetries: 2 } }).complete({ model: 'alpha/m1', messages });
    expect(result.provider).toBe('alpha');
    expect(alpha.chatRequests).toHaveLength(2);
    const gap = alpha.chatRequests[1].receivedAt - alpha.chatRequests[0].receivedAt;
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(2500);
    expect(result.attempts[0]).toMatchObject({ ok: false, status: 429, code: 'LLM_RATE_LIMITED', waitMs: 1000 });
  });

  it('honours retry-after-ms over Retry-After', async () => {
    alpha.enqueue({ type: 'error', status: 429, headers: { 'retry-after': '30', 'retry-after-ms': '200' } });
    await makeRouter({}, { alpha: { maxRetries: 1 } }).complete({ model: 'alpha/m1', messages });
    const gap = alpha.chatRequests[1].receivedAt - alpha.chatRequests[0].receivedAt;
    expect(gap).toBeGreaterThanOrEqual(190);
    expect(gap).toBeLessThan(1500);
  });

  it('backs off exponentially when the upstream gives no Retry-After, then fails with every attempt recorded', async () => {
    alpha.setReply({ type: 'error', status: 503 });
    const router = makeRouter({}, { alpha: { maxRetries: 2 } }, { backoff: { initialDelayMs: 100, factor: 3, maxDelayMs: 5000, jitter: 0 } });
    const err = await router.complete({ model: 'alpha/m1', messages }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'LLM_UPSTREAM_ERROR', status: 503, retryable: true });
    expect((err as Error).message).toContain('after 3 attempts');
    expect((err as ProviderError).details?.attempts).toHaveLength(3);
    const [a, b, c] = alpha.chatRequests.map((r) => r.receivedAt);
    expect(b - a).toBeGreaterThanOrEqual(95);
    expect(c - b).toBeGreaterThanOrEqual(290);
    expect(c - b).toBeLessThan(2000);
  });

  it('moves on to the fallback at once when Retry-After is longer than it will wait', async () => {
    alpha.setReply({ type: 'error', status: 429, headers: { 'retry-after': '120' } });
    const started = performance.now();
    const result = await makeRouter({ fallbacks: { a1: ['beta/m2'] } }, { alpha: { maxRetries: 3 } }).complete({ model: 'a1', messages });
    expect(result.provider).toBe('beta');
    expect(alpha.chatRequests).toHaveLength(1);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('timeout and cancellation', () => {
  it('times out a request that gets no answer, and aborts it', async () => {
    alpha.setReply({ type: 'hang' });
    const started = performance.now();
    const err = await makeRouter({}, { alpha: { timeoutMs: 300 } }).complete({ model: 'alpha/m1', messages }).catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(err).toMatchObject({ code: 'LLM_TIMEOUT', retryable: true });
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(2000);
    await waitUntil(() => alpha.chatRequests[0]?.closedEarly, 2000, 'upstream to see the abort');
  });

  it('retries after a timeout when retries remain', async () => {
    alpha.enqueue({ type: 'hang' });
    const result = await makeRouter({}, { alpha: { timeoutMs: 300, maxRetries: 1 } }).complete({ model: 'alpha/m1', messages });
    expect(result.attempts.map((a) => [a.ok, a.code])).toEqual([
      [false, 'LLM_TIMEOUT'],
      [true, undefined],
    ]);
  });

  it('aborts the in-flight request when the caller cancels, without retrying or falling back', async () => {
    alpha.setReply({ type: 'hang' });
    const controller = new AbortController();
    const call = makeRouter({ fallbacks: { '*': ['fast'] } }, { alpha: { maxRetries: 3 } }).complete({ model: 'alpha/m1', messages }, { signal: controller.signal });
    await waitUntil(() => alpha.chatRequests.length === 1, 2000, 'the request to arrive');
    controller.abort();
    await expect(call).rejects.toBeInstanceOf(LlmCancelledError);
    await waitUntil(() => alpha.chatRequests[0].closedEarly, 2000, 'upstream to see the abort');
    await new Promise((r) => setTimeout(r, 200));
    expect(alpha.chatRequests).toHaveLength(1);
    expect(beta.chatRequests).toHaveLength(0);
  });

  it('cancels during a backoff wait', async () => {
    alpha.setReply({ type: 'error', status: 429, headers: { 'retry-after': '5' } });
    const controller = new AbortController();
    const call = makeRouter({}, { alpha: { maxRetries: 2 } }).complete({ model: 'alpha/m1', messages }, { signal: controller.signal });
    await waitUntil(() => alpha.chatRequests.length === 1, 2000, 'the first attempt');
    const started = performance.now();
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: 'LLM_CANCELLED' });
    expect(performance.now() - started).toBeLessThan(500);
    expect(alpha.chatRequests).toHaveLength(1);
  });
});

describe('streaming', () => {
  it('passes the upstream stream through, chunk by chunk, with its usage', async () => {
    alpha.setReply({ type: 'completion', content: 'one two three four', chunkDelayMs: 5 });
    const events = [];
    for await (const e of makeRouter().stream({ model: 'alpha/m1', messages })) events.push(e);
    expect(events[0]).toEqual({ type: 'start', provider: 'alpha', model: 'm1' });
    const deltas = events.filter((e) => e.type === 'delta').map((e) => (e.type === 'delta' ? e.text : ''));
    expect(deltas).toEqual(['one ', 'two ', 'three ', 'four']);
    const end = events.at(-1);
    expect(end?.type === 'end' && end.result).toMatchObject({ text: 'one two three four', finishReason: 'stop', usage: { promptTokens: 10, completionTokens: 4, totalTokens: 14 } });
    expect(alpha.chatRequests[0].body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
  });

  it('complete() with stream: true aggregates and reports deltas', async () => {
    alpha.setReply({ type: 'completion', content: 'a b c' });
    const seen: string[] = [];
    const result = await makeRouter().complete({ model: 'alpha/m1', messages, stream: true }, { onDelta: (t) => seen.push(t) });
    expect(seen).toEqual(['a ', 'b ', 'c']);
    expect(result.text).toBe('a b c');
  });

  it('retries a stream that fails before it starts, falls back, but never after text was sent', async () => {
    alpha.enqueue({ type: 'error', status: 502 });
    const router = makeRouter({}, { alpha: { maxRetries: 1 } });
    const texts: string[] = [];
    for await (const e of router.stream({ model: 'alpha/m1', messages })) if (e.type === 'delta') texts.push(e.text);
    expect(texts.join('')).toContain('[fake:alpha]');
    expect(alpha.chatRequests).toHaveLength(2);

    alpha.requests.length = 0;
    alpha.setReply({ type: 'stream-error', content: 'partial answer', message: 'model crashed' });
    const got: string[] = [];
    const err = await (async () => {
      for await (const e of router.stream({ model: 'alpha/m1', messages })) if (e.type === 'delta') got.push(e.text);
    })().catch((e: unknown) => e);
    expect(got.join('')).toBe('partial answer');
    expect(err).toMatchObject({ code: 'LLM_UPSTREAM_ERROR' });
    expect((err as Error).message).toContain('model crashed');
    expect(alpha.chatRequests).toHaveLength(1);
  });

  it('aborts the upstream stream when the caller cancels mid-way', async () => {
    alpha.setReply({ type: 'completion', content: 'w '.repeat(200), chunkDelayMs: 20 });
    const controller = new AbortController();
    let deltas = 0;
    const err = await (async () => {
      for await (const e of makeRouter().stream({ model: 'alpha/m1', messages }, { signal: controller.signal })) {
        if (e.type === 'delta' && ++deltas === 3) controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmCancelledError);
    expect(deltas).toBeLessThan(10);
    await waitUntil(() => alpha.chatRequests[0].closedEarly, 2000, 'upstream to see the abort');
  });
});

describe('runLlmStep against an upstream', () => {
  it('parses JSON output, and fails non-retryably with the raw text when it is not JSON', async () => {
    alpha.enqueue({ type: 'completion', content: '{"risks":["xss"]}' }, { type: 'completion', content: 'I think the risks are XSS.' });
    const router = makeRouter();
    const ok = await runLlmStep(router, { model: 'alpha/m1', prompt: 'List risks', json: true });
    expect(ok).toMatchObject({ json: { risks: ['xss'] }, provider: 'alpha', model: 'm1' });
    expect(alpha.chatRequests[0].body.messages[0]).toEqual({ role: 'system', content: expect.stringContaining('JSON') });

    const err = await runLlmStep(router, { model: 'alpha/m1', prompt: 'List risks', json: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LlmOutputError);
    expect(err).toMatchObject({ retryable: false, raw: 'I think the risks are XSS.', details: { provider: 'alpha', model: 'm1' } });
  });
});
