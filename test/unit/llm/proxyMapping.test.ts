import { describe, expect, it } from 'vitest';
import { SmartSpecError } from '../../../src/errors.js';
import { ModelNotFoundError, ProviderDisabledError, ProviderError, ProviderErrorCode } from '../../../src/llm/index.js';
import { toOpenAiError } from '../../../src/llm/proxy/errorResponse.js';
import { parseChatCompletionRequest } from '../../../src/llm/proxy/requestSchema.js';

const ok = { model: 'local/echo', messages: [{ role: 'user', content: 'hi' }] };

describe('parseChatCompletionRequest', () => {
  it('maps the wire request to a CompletionRequest', () => {
    const r = parseChatCompletionRequest({
      ...ok,
      messages: [
        { role: 'developer', content: 'rules' },
        { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] },
      ],
      temperature: 0.2,
      max_tokens: 50,
      max_completion_tokens: 20,
      response_format: { type: 'json_object' },
      stream: true,
      stream_options: { include_usage: true },
      user: 'ignored',
    });
    expect(r).toEqual({
      ok: true,
      value: {
        request: {
          model: 'local/echo',
          messages: [
            { role: 'developer', content: 'rules' },
            { role: 'user', content: 'ab' },
          ],
          temperature: 0.2,
          maxTokens: 20,
          json: true,
        },
        stream: true,
        includeUsage: true,
      },
    });
  });

  it.each([
    [undefined, null, /JSON object/],
    [{ model: 'x' }, 'messages', /messages is required/],
    [{ ...ok, messages: [] }, 'messages', /must not be empty/],
    [{ messages: ok.messages }, 'model', /model is required/],
    [{ ...ok, messages: [{ role: 'tool', content: 'x' }] }, 'messages[0].role', /not supported/],
    [{ ...ok, messages: [{ role: 'user' }] }, 'messages[0].content', /content/],
    [{ ...ok, temperature: 3 }, 'temperature', /./],
    [{ ...ok, tools: [{ type: 'function' }] }, 'tools', /tools is not supported/],
    [{ ...ok, n: 2 }, 'n', /n must be 1/],
    [{ ...ok, response_format: { type: 'json_schema' } }, 'response_format.type', /json_schema is not supported/],
  ])('rejects %j naming %s', (body, param, message) => {
    const r = parseChatCompletionRequest(body);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.param).toBe(param);
      expect(r.message).toMatch(message);
    }
  });
});

describe('toOpenAiError', () => {
  const pe = (code: ProviderErrorCode, status?: number, extra: Partial<{ retryAfterMs: number; details: Record<string, unknown> }> = {}) =>
    new ProviderError(code, `up: failed ${status ?? ''}`, { provider: 'up', status, retryable: true, ...extra });

  it('maps each failure to the status and OpenAI error body', () => {
    expect(toOpenAiError(new ModelNotFoundError('x/y'))).toMatchObject({ status: 404, body: { error: { code: 'model_not_found', param: 'model', type: 'invalid_request_error' } } });
    expect(toOpenAiError(new ProviderDisabledError('ollama', 'ollama/m', 'set OLLAMA_ENABLED=true'))).toMatchObject({
      status: 404,
      body: { error: { code: 'provider_disabled', message: expect.stringContaining('OLLAMA_ENABLED=true') } },
    });
    expect(toOpenAiError(pe(ProviderErrorCode.RateLimited, 429, { retryAfterMs: 1500 }))).toMatchObject({ status: 429, headers: { 'retry-after': '2' }, body: { error: { code: 'rate_limit_exceeded' } } });
    expect(toOpenAiError(pe(ProviderErrorCode.Upstream, 500)).status).toBe(502);
    expect(toOpenAiError(pe(ProviderErrorCode.Upstream, 503)).status).toBe(503);
    expect(toOpenAiError(pe(ProviderErrorCode.Connection)).status).toBe(503);
    expect(toOpenAiError(pe(ProviderErrorCode.Timeout)).status).toBe(504);
    expect(toOpenAiError(pe(ProviderErrorCode.Rejected, 400, { details: { upstream: { type: 'invalid_request_error', code: 'bad', param: 'temperature' } } }))).toMatchObject({
      status: 400,
      body: { error: { code: 'bad', param: 'temperature' } },
    });
  });

  it('hides upstream credential failures and internal errors', () => {
    const auth = toOpenAiError(pe(ProviderErrorCode.Rejected, 401));
    expect(auth.status).toBe(502);
    expect(auth.body.error.message).not.toContain('failed');
    const internal = toOpenAiError(new TypeError('cannot read x of undefined'));
    expect(internal).toMatchObject({ status: 500, body: { error: { message: 'internal error' } } });
    expect(toOpenAiError(new SmartSpecError('SOMETHING', 'safe message')).body.error.code).toBe('something');
  });
});
