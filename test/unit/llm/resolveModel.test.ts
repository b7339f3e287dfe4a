import { describe, expect, it } from 'vitest';
import { ModelNotFoundError, ProviderDisabledError, listModels, resolveModel, type ProviderConfig } from '../../../src/llm/index.js';

const provider = (name: string, over: Partial<ProviderConfig> = {}): ProviderConfig => ({
  name,
  kind: 'openai-compatible',
  baseURL: `http://${name}/v1`,
  models: ['*'],
  aliases: {},
  timeoutMs: 1000,
  maxRetries: 0,
  enabled: true,
  ...over,
});

const providers = [
  provider('openai', { kind: 'openai', models: ['gpt-4o-mini', 'gpt-4o'], aliases: { mini: 'gpt-4o-mini' } }),
  provider('groq', { models: ['llama-3.1-8b'], aliases: { fast: 'llama-3.1-8b' } }),
  provider('vllm'),
  provider('ollama', { kind: 'ollama', enabled: false, disabledReason: 'set OLLAMA_ENABLED=true to enable it', models: ['llama3.2', '*'] }),
  provider('local', { kind: 'local', models: ['echo'] }),
];
const aliases = { default: 'local/echo', smart: 'gpt4', gpt4: 'openai/gpt-4o', loop: 'loop2', loop2: 'loop' };

describe('resolveModel', () => {
  it('routes provider/model to that provider, applying its aliases', () => {
    expect(resolveModel('groq/llama-3.1-8b', providers, aliases)).toEqual({ provider: 'groq', model: 'llama-3.1-8b' });
    expect(resolveModel('openai/mini', providers, aliases)).toEqual({ provider: 'openai', model: 'gpt-4o-mini' });
    expect(resolveModel('vllm/anything/with/slashes', providers, aliases)).toEqual({ provider: 'vllm', model: 'anything/with/slashes' });
  });

  it('follows global alias chains and rejects cycles', () => {
    expect(resolveModel('smart', providers, aliases)).toEqual({ provider: 'openai', model: 'gpt-4o' });
    expect(() => resolveModel('loop', providers, aliases)).toThrow(/alias cycle/);
  });

  it('sends a bare name to the first provider listing it, before any passthrough', () => {
    expect(resolveModel('llama-3.1-8b', providers)).toEqual({ provider: 'groq', model: 'llama-3.1-8b' });
    expect(resolveModel('fast', providers)).toEqual({ provider: 'groq', model: 'llama-3.1-8b' });
    expect(resolveModel('echo', providers)).toEqual({ provider: 'local', model: 'echo' });
    // No explicit owner: the first enabled passthrough, even for a slashed id of no provider.
    expect(resolveModel('qwen2.5', providers)).toEqual({ provider: 'vllm', model: 'qwen2.5' });
    expect(resolveModel('meta-llama/Llama-3-8b', providers)).toEqual({ provider: 'vllm', model: 'meta-llama/Llama-3-8b' });
  });

  it('rejects a model its provider does not serve, listing what it does serve', () => {
    expect(() => resolveModel('openai/o9', providers)).toThrow(ModelNotFoundError);
    expect(() => resolveModel('openai/o9', providers)).toThrow(/serves: gpt-4o-mini, gpt-4o, mini/);
    expect(() => resolveModel('local/gpt-4o', providers)).toThrow(/serves: echo/);
    expect(() => resolveModel('  ', providers)).toThrow(/no model given/);
  });

  it('reports a disabled provider with its reason instead of routing elsewhere', () => {
    expect(() => resolveModel('ollama/llama3.2', providers)).toThrow(ProviderDisabledError);
    expect(() => resolveModel('llama3.2', providers)).toThrow(/OLLAMA_ENABLED=true/);
  });

  it('lists provider/model ids of enabled providers and the aliases that resolve', () => {
    const ids = listModels(providers, aliases).map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['openai/gpt-4o-mini', 'openai/mini', 'groq/llama-3.1-8b', 'local/echo', 'default', 'smart', 'fast', 'mini']));
    expect(ids.some((id) => id.startsWith('ollama/'))).toBe(false);
    expect(ids).not.toContain('loop');
    expect(ids.some((id) => id.endsWith('*'))).toBe(false);
    expect(listModels(providers, aliases).find((m) => m.id === 'smart')?.provider).toBe('openai');
  });
});
