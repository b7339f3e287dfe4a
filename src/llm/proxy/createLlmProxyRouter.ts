/**
 * The OpenAI-compatible proxy: POST /v1/chat/completions (JSON or SSE) and
 * GET /v1/models, so the official openai client works with
 * `baseURL: http://host:port/v1`. Errors are answered here in OpenAI's shape
 * (not problem+json), because that is what OpenAI clients parse. A client
 * that disconnects aborts the upstream request.
 */
import { PassThrough } from 'node:stream';
import Router from '@koa/router';
import type { Context } from 'koa';
import type { LlmRouter } from '../llmRouter.js';
import type { CompletionStreamEvent } from '../types.js';
import { openAiError, toOpenAiError, type OpenAiErrorResponse } from './errorResponse.js';
import { chunkBody, completionBody, newIdentity, sse, usageChunkBody } from './openaiFormat.js';
import { parseChatCompletionRequest, type ParsedChatRequest } from './requestSchema.js';

export function createLlmProxyRouter(router: LlmRouter): Router {
  const routes = new Router();

  routes.get('/v1/models', (ctx) => {
    ctx.body = { object: 'list', data: router.listModels().map(modelObject) };
  });

  // Ids contain a slash (`local/echo`); clients may send it encoded or not.
  routes.get(['/v1/models/:id', '/v1/models/:provider/:model'], (ctx) => {
    const id = ctx.params.model ? `${ctx.params.provider}/${ctx.params.model}` : ctx.params.id;
    const found = router.listModels().find((m) => m.id === id);
    if (found) ctx.body = modelObject(found);
    else send(ctx, openAiError(404, `model '${id}' not found`, 'invalid_request_error', 'model_not_found', 'model'));
  });

  routes.post('/v1/chat/completions', async (ctx) => {
    const parsed = parseChatCompletionRequest((ctx.request as { body?: unknown }).body);
    if (!parsed.ok) return send(ctx, openAiError(400, parsed.message, 'invalid_request_error', 'invalid_value', parsed.param));
    const abort = abortOnDisconnect(ctx);
    if (parsed.value.stream) return streamCompletion(ctx, router, parsed.value, abort);
    try {
      const result = await router.complete(parsed.value.request, { signal: abort.signal });
      setProviderHeaders(ctx, result.provider, result.model);
      ctx.body = completionBody(newIdentity(result.provider, result.model), result);
    } catch (err) {
      send(ctx, toOpenAiError(err));
    } finally {
      abort.dispose();
    }
  });

  return routes;
}

async function streamCompletion(ctx: Context, router: LlmRouter, parsed: ParsedChatRequest, abort: DisconnectAbort): Promise<void> {
  const events = router.stream(parsed.request, { signal: abort.signal });
  let first: IteratorResult<CompletionStreamEvent>;
  try {
    // Until the upstream has accepted the request, failures are ordinary HTTP errors.
    first = await events.next();
  } catch (err) {
    abort.dispose();
    return send(ctx, toOpenAiError(err));
  }
  if (first.done || first.value.type !== 'start') {
    abort.dispose();
    return send(ctx, openAiError(502, 'upstream stream ended before it started', 'upstream_error', 'upstream_error'));
  }
  const who = newIdentity(first.value.provider, first.value.model);
  setProviderHeaders(ctx, first.value.provider, first.value.model);
  ctx.status = 200;
  ctx.type = 'text/event-stream';
  ctx.set('Cache-Control', 'no-cache');
  ctx.set('X-Accel-Buffering', 'no');
  const out = new PassThrough();
  ctx.body = out;
  const write = (data: unknown) => {
    if (!out.destroyed && !out.writableEnded) out.write(sse(data));
  };

  void (async () => {
    try {
      write(chunkBody(who, { role: 'assistant', content: '' }));
      for await (const event of events) {
        if (event.type === 'delta') write(chunkBody(who, { content: event.text }));
        else if (event.type === 'end') {
          write(chunkBody(who, {}, event.result.finishReason ?? 'stop'));
          if (parsed.includeUsage) write(usageChunkBody(who, event.result.usage));
        }
      }
      write('[DONE]');
    } catch (err) {
      // Headers are gone: report in-band, as OpenAI does; its client throws on an `error` event.
      if (!abort.signal.aborted) write(toOpenAiError(err).body);
    } finally {
      abort.dispose();
      out.end();
    }
  })();
}

interface DisconnectAbort {
  signal: AbortSignal;
  dispose(): void;
}

function abortOnDisconnect(ctx: Context): DisconnectAbort {
  const controller = new AbortController();
  // 'close' without a finished response means the client went away.
  const onClose = () => {
    if (!ctx.res.writableFinished) controller.abort();
  };
  ctx.res.once('close', onClose);
  return { signal: controller.signal, dispose: () => ctx.res.off('close', onClose) };
}

function send(ctx: Context, error: OpenAiErrorResponse): void {
  ctx.status = error.status;
  for (const [name, value] of Object.entries(error.headers)) ctx.set(name, value);
  ctx.body = error.body;
}

function setProviderHeaders(ctx: Context, provider: string, model: string): void {
  ctx.set('x-smartspec-provider', provider);
  ctx.set('x-smartspec-model', model);
}

function modelObject(m: { id: string; provider: string }) {
  return { id: m.id, object: 'model' as const, created: 0, owned_by: m.provider };
}
