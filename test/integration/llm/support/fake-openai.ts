/**
 * A small server speaking the chat-completions protocol on 127.0.0.1 (port 0),
 * standing in for a paid upstream in tests. Replies are scripted per request;
 * every request is recorded with its arrival time and whether the client went
 * away before the answer finished. Reusable by end-to-end tests:
 *
 *   const fake = await startFakeOpenAI({ name: 'up' });
 *   fake.enqueue({ type: 'error', status: 429, headers: { 'retry-after': '1' } });
 *   // ... point a provider at fake.url (ends in /v1) ...
 *   await fake.close();
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, afterEach, beforeAll } from 'vitest';
import type { LlmRouter } from '../../../../src/llm/index.js';
import { defaultExecutors } from '../../../../src/steps/index.js';
import { llmExecutor } from '../../../../src/steps/llm.js';
import type { StepExecutors } from '../../../../src/steps/types.js';

export type FakeReply =
  /** A normal answer; streamed as SSE when the request asks for it. */
  | { type: 'completion'; content?: string; delayMs?: number; chunkDelayMs?: number; usage?: FakeUsage | null; finishReason?: string }
  | { type: 'error'; status: number; message?: string; errorType?: string; code?: string; headers?: Record<string, string>; delayMs?: number }
  /** Headers and some text, then an in-band error event (a stream failing halfway). */
  | { type: 'stream-error'; content: string; message?: string }
  /** Accepts the request and never answers (until the client gives up). */
  | { type: 'hang' };

export interface FakeUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: any;
  /** performance.now() at arrival; compare with other requests' arrivals. */
  receivedAt: number;
  /** The client closed the connection before the response was complete. */
  closedEarly: boolean;
}

export type FakeHandler = (body: any, index: number) => FakeReply;

export interface FakeOpenAIOptions {
  /** Appears in default answers: `[fake:<name>] ...`. */
  name?: string;
  /** Served by GET /v1/models. */
  models?: string[];
  /** When set, requests without `Authorization: Bearer <apiKey>` get a 401. */
  apiKey?: string;
  /** Reply when the queue is empty; default: a completion. */
  reply?: FakeReply | FakeHandler;
}

export interface FakeOpenAI {
  /** Base URL for an OpenAI client: http://127.0.0.1:<port>/v1 */
  url: string;
  port: number;
  requests: RecordedRequest[];
  /** Chat-completion requests only. */
  readonly chatRequests: RecordedRequest[];
  /** Replies for the next chat requests, in order; then the default. */
  enqueue(...replies: FakeReply[]): void;
  setReply(reply: FakeReply | FakeHandler): void;
  close(): Promise<void>;
}

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const name = options.name ?? 'fake';
  const queue: FakeReply[] = [];
  let fallback: FakeReply | FakeHandler = options.reply ?? { type: 'completion' };
  const requests: RecordedRequest[] = [];
  let chatIndex = 0;

  const server = createServer((req, res) => {
    const receivedAt = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: any;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        body = raw;
      }
      const path = (req.url ?? '/').split('?')[0];
      const record: RecordedRequest = { method: req.method ?? 'GET', path, headers: req.headers, body, receivedAt, closedEarly: false };
      requests.push(record);
      res.on('close', () => {
        if (!res.writableFinished) record.closedEarly = true;
      });

      if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
        return sendError(res, { type: 'error', status: 401, message: 'Incorrect API key provided', errorType: 'invalid_request_error', code: 'invalid_api_key' });
      }
      if (req.method === 'GET' && path === '/v1/models') {
        return sendJson(res, 200, { object: 'list', data: (options.models ?? []).map((id) => ({ id, object: 'model', created: 0, owned_by: name })) });
      }
      if (req.method === 'POST' && path === '/v1/chat/completions') {
        const index = chatIndex++;
        const reply = queue.shift() ?? (typeof fallback === 'function' ? fallback(body, index) : fallback);
        return void answer(res, reply, body, name);
      }
      sendError(res, { type: 'error', status: 404, message: `no route ${req.method} ${path}` });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    get chatRequests() {
      return requests.filter((r) => r.path === '/v1/chat/completions');
    },
    enqueue: (...replies) => void queue.push(...replies),
    setReply: (reply) => {
      fallback = reply;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function answer(res: ServerResponse, reply: FakeReply, body: any, name: string): Promise<void> {
  if (reply.type === 'hang') return;
  if ('delayMs' in reply && reply.delayMs) await delay(reply.delayMs);
  if (res.destroyed) return;
  if (reply.type === 'error') return sendError(res, reply);

  const lastUser = [...(body?.messages ?? [])].reverse().find((m: any) => m.role === 'user')?.content ?? '';
  const content = reply.content ?? `[fake:${name}] model=${body?.model} heard: ${typeof lastUser === 'string' ? lastUser : JSON.stringify(lastUser)}`;
  const usage: FakeUsage | null =
    reply.type === 'completion' && reply.usage !== undefined ? reply.usage : { prompt_tokens: 10, completion_tokens: words(content).length, total_tokens: 10 + words(content).length };
  const id = `chatcmpl-fake-${Math.random().toString(36).slice(2)}`;
  const base = { id, created: Math.floor(Date.now() / 1000), model: body?.model ?? 'unknown' };

  if (!body?.stream) {
    return sendJson(res, 200, {
      ...base,
      object: 'chat.completion',
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: reply.type === 'completion' ? reply.finishReason ?? 'stop' : 'stop', logprobs: null }],
      ...(usage ? { usage } : {}),
    });
  }

  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const chunk = (delta: object, finish: string | null = null) =>
    res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`);
  chunk({ role: 'assistant', content: '' });
  for (const piece of words(content)) {
    if (res.destroyed) return;
    chunk({ content: piece });
    if (reply.type === 'completion' && reply.chunkDelayMs) await delay(reply.chunkDelayMs);
  }
  if (reply.type === 'stream-error') {
    res.write(`data: ${JSON.stringify({ error: { message: reply.message ?? 'upstream broke mid-stream', type: 'server_error', code: null, param: null } })}\n\n`);
    return void res.end();
  }
  chunk({}, reply.finishReason ?? 'stop');
  if (usage && body?.stream_options?.include_usage) res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage })}\n\n`);
  res.end('data: [DONE]\n\n');
}

function sendError(res: ServerResponse, reply: Extract<FakeReply, { type: 'error' }>): void {
  res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
  res.end(JSON.stringify({ error: { message: reply.message ?? `fake error ${reply.status}`, type: reply.errorType ?? 'server_error', code: reply.code ?? null, param: null } }));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Words with their trailing space, so joining the pieces gives the text back. */
function words(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [];
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `check` is true; for waiting on server-side facts (a request arrived, a socket closed). */
export async function waitUntil(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

/**
 * A fake upstream for a whole test file: started before its tests, its requests and reply reset
 * after each test, closed at the end. Call the returned function inside a test (or a later hook).
 */
export function useFakeOpenAI(name = 'up'): () => FakeOpenAI {
  let fake: FakeOpenAI | undefined;
  beforeAll(async () => {
    fake = await startFakeOpenAI({ name });
  });
  afterAll(async () => {
    await fake?.close();
  });
  afterEach(() => {
    if (!fake) return;
    fake.requests.length = 0;
    fake.setReply({ type: 'completion' });
  });
  return () => fake!;
}

/** The built-in executors with `llm` on `router`, counting how often each llm step actually ran. */
export function countingLlmExecutors(router: LlmRouter): { executors: StepExecutors; runs: Map<string, number> } {
  const runs = new Map<string, number>();
  const llm = llmExecutor(router);
  return {
    runs,
    executors: defaultExecutors({
      llm: (run) => {
        runs.set(run.step.id, (runs.get(run.step.id) ?? 0) + 1);
        return llm(run);
      },
    }),
  };
}
