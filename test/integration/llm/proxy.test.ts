/**
 * The official openai client, unchanged, against the proxy mounted in a real
 * Koa app on a real port: the local provider, and a fake upstream behind it.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { koaBody } from 'koa-body';
import OpenAI, { APIError } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_NOTICE, LlmRouter, createLlmProxyRouter, createProviders } from '../../../src/llm/index.js';
import { localAnswer } from '../../../src/llm/providers/localProvider.js';
import { startFakeOpenAI, waitUntil, type FakeOpenAI } from './support/fake-openai.js';

let upstream: FakeOpenAI;
let server: Server;
let baseURL: string;
let client: OpenAI;
/** Errors Koa reports; a client leaving mid-stream (premature close) is expected, nothing else is. */
const appErrors: Error[] = [];

beforeAll(async () => {
  upstream = await startFakeOpenAI({ name: 'up' });
  const router = new LlmRouter(
    createProviders(
      {},
      {
        providers: [
          { name: 'up', baseURL: upstream.url, models: ['gpt-fake'], aliases: { quick: 'gpt-fake' }, maxRetries: 0, timeoutMs: 1000 },
          { name: 'dead', baseURL: 'http://127.0.0.1:9/v1', models: ['gone'], maxRetries: 0 },
        ],
      },
    ),
  );
  const app = new Koa();
  app.on('error', (err: Error & { code?: string }) => {
    if (err.code !== 'ERR_STREAM_PREMATURE_CLOSE') appErrors.push(err);
  });
  app.use(koaBody());
  const routes = createLlmProxyRouter(router);
  app.use(routes.routes()).use(routes.allowedMethods());
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  client = new OpenAI({ baseURL, apiKey: 'unused-by-the-proxy', maxRetries: 0 });
});
afterAll(async () => {
  expect(appErrors).toEqual([]);
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await upstream.close();
});
afterEach(() => {
  upstream.requests.length = 0;
  upstream.setReply({ type: 'completion' });
});

const messages = [{ role: 'user' as const, content: 'Draft a spec for login' }];

async function collect(stream: AsyncIterable<OpenAI.Chat.Completions.ChatCompletionChunk>) {
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const c of stream) chunks.push(c);
  return { chunks, text: chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('') };
}

describe('proxy with the local provider', () => {
  it('answers a non-streaming request', async () => {
    const res = await client.chat.completions.create({ model: 'local/echo', messages });
    const expected = localAnswer({ model: 'echo', messages });
    expect(res.object).toBe('chat.completion');
    expect(res.model).toBe('local/echo');
    expect(res.choices[0].message).toMatchObject({ role: 'assistant', content: expected.text });
    expect(res.choices[0].message.content?.startsWith(LOCAL_NOTICE)).toBe(true);
    expect(res.choices[0].finish_reason).toBe('stop');
    expect(res.usage).toEqual({ prompt_tokens: expected.usage.promptTokens, completion_tokens: expected.usage.completionTokens, total_tokens: expected.usage.totalTokens });
  });

  it('streams the same answer as SSE chunks, with usage when asked', async () => {
    const plain = await client.chat.completions.create({ model: 'default', messages });
    const { chunks, text } = await collect(await client.chat.completions.create({ model: 'default', messages, stream: true, stream_options: { include_usage: true } }));
    expect(text).toBe(plain.choices[0].message.content);
    expect(chunks.length).toBeGreaterThan(4);
    expect(chunks[0].choices[0].delta.role).toBe('assistant');
    expect(chunks.find((c) => c.choices[0]?.finish_reason)?.choices[0].finish_reason).toBe('stop');
    expect(chunks.at(-1)?.usage?.total_tokens).toBe(plain.usage?.total_tokens);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it('returns JSON in json mode', async () => {
    const res = await client.chat.completions.create({ model: 'local/echo', messages, response_format: { type: 'json_object' } });
    expect(JSON.parse(res.choices[0].message.content ?? '')).toMatchObject({ notice: LOCAL_NOTICE, echo: 'Draft a spec for login' });
  });

  it('sends raw SSE framing that ends with [DONE]', async () => {
    const res = await fetch(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'local/echo', messages, stream: true }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const body = await res.text();
    expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(body.split('\n\n').filter(Boolean).every((frame) => frame.startsWith('data: '))).toBe(true);
  });
});

describe('proxy in front of an upstream', () => {
  it('forwards non-streaming and streaming requests', async () => {
    const res = await client.chat.completions.create({ model: 'quick', messages, max_tokens: 30 });
    expect(res.model).toBe('up/gpt-fake');
    expect(res.choices[0].message.content).toBe('[fake:up] model=gpt-fake heard: Draft a spec for login');
    expect(res.usage?.prompt_tokens).toBe(10);
    expect(upstream.chatRequests[0].body).toMatchObject({ model: 'gpt-fake', max_tokens: 30 });

    upstream.setReply({ type: 'completion', content: 'streamed from upstream', chunkDelayMs: 5 });
    const { text } = await collect(await client.chat.completions.create({ model: 'up/gpt-fake', messages, stream: true }));
    expect(text).toBe('streamed from upstream');
  });

  it('lists enabled models and aliases', async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(['local/echo', 'up/gpt-fake', 'up/quick', 'dead/gone', 'default', 'quick']));
    expect(ids.some((id) => id.startsWith('ollama/'))).toBe(false);
    expect((await client.models.retrieve('local/echo')).owned_by).toBe('local');
  });

  it('aborts the upstream request when the HTTP client goes away', async () => {
    upstream.setReply({ type: 'hang' });
    const controller = new AbortController();
    const call = fetch(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'up/gpt-fake', messages }),
      signal: controller.signal,
    }).catch((e: unknown) => e);
    await waitUntil(() => upstream.chatRequests.length === 1, 2000, 'the upstream request');
    const aborted = performance.now();
    controller.abort();
    await call;
    await waitUntil(() => upstream.chatRequests[0].closedEarly, 2000, 'the upstream request to be aborted');
    // Well before the provider's 1 s timeout would have closed it anyway.
    expect(performance.now() - aborted).toBeLessThan(600);
  });

  it('aborts the upstream stream when the HTTP client leaves mid-stream', async () => {
    upstream.setReply({ type: 'completion', content: 'word '.repeat(200), chunkDelayMs: 20 });
    const controller = new AbortController();
    const res = await fetch(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'up/gpt-fake', messages, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain('data: ');
    const aborted = performance.now();
    controller.abort();
    await waitUntil(() => upstream.chatRequests[0].closedEarly, 2000, 'the upstream stream to be aborted');
    expect(performance.now() - aborted).toBeLessThan(600);
  });

  it('reports a stream that breaks halfway as an error the client raises', async () => {
    upstream.setReply({ type: 'stream-error', content: 'half an answer', message: 'model crashed' });
    const stream = await client.chat.completions.create({ model: 'up/gpt-fake', messages, stream: true });
    const seen: string[] = [];
    const err = await (async () => {
      for await (const c of stream) seen.push(c.choices[0]?.delta?.content ?? '');
    })().catch((e: unknown) => e);
    expect(seen.join('')).toBe('half an answer');
    expect(err).toBeInstanceOf(APIError);
    expect((err as APIError).message).toContain('model crashed');
  });
});

describe('proxy errors, OpenAI-style', () => {
  const failure = async (params: Record<string, unknown>) => {
    const err = await client.chat.completions.create(params as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(APIError);
    return err as APIError;
  };

  it('400 naming the field for an invalid body', async () => {
    const err = await failure({ model: 'local/echo' });
    expect(err).toMatchObject({ status: 400, type: 'invalid_request_error', param: 'messages' });
    const res = await fetch(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'local/echo', messages: [{ role: 'user', content: 5 }] }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { message: expect.stringContaining('content'), type: 'invalid_request_error', code: 'invalid_value', param: 'messages[0].content' } });
  });

  it('404 for an unknown model', async () => {
    expect(await failure({ model: 'nope/model', messages })).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
  });

  it('429 with Retry-After when the upstream rate-limits', async () => {
    upstream.setReply({ type: 'error', status: 429, headers: { 'retry-after': '3' } });
    const err = await failure({ model: 'up/gpt-fake', messages });
    expect(err).toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
    expect(err.headers?.get('retry-after')).toBe('3');
  });

  it('502 for an upstream 500, 503 when unreachable, 504 on timeout — streaming or not', async () => {
    upstream.setReply({ type: 'error', status: 500 });
    expect((await failure({ model: 'up/gpt-fake', messages })).status).toBe(502);
    expect((await failure({ model: 'up/gpt-fake', messages, stream: true })).status).toBe(502);
    expect((await failure({ model: 'dead/gone', messages })).status).toBe(503);
    upstream.setReply({ type: 'hang' });
    const err = await failure({ model: 'up/gpt-fake', messages });
    expect(err).toMatchObject({ status: 504, code: 'upstream_timeout' });
  });
});
