import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  LlmConfigError,
  LlmRouter,
  ModelNotFoundError,
  ProviderDisabledError,
  createProviders,
  summarizeProviders,
  type ProviderSet,
} from '../../../src/llm/index.js';

const names = (set: ProviderSet) => set.providers.map((p) => p.config.name);
const config = (set: ProviderSet, name: string) => set.providers.find((p) => p.config.name === name)?.config;
const user = (content: string) => [{ role: 'user' as const, content }];

const dir = mkdtempSync(join(tmpdir(), 'smartspec-llm-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('createProviders: OpenAI', () => {
  it('creates OpenAI when OPENAI_API_KEY is set, with the default base URL', () => {
    const set = createProviders({ OPENAI_API_KEY: 'sk-test' });
    expect(names(set)).toEqual(['openai', 'ollama', 'local']);
    expect(config(set, 'openai')).toMatchObject({ kind: 'openai', baseURL: 'https://api.openai.com/v1', apiKey: 'sk-test', models: ['*'], enabled: true });
  });

  it('does not create OpenAI without a key (unset or blank)', () => {
    expect(names(createProviders({}))).toEqual(['ollama', 'local']);
    expect(names(createProviders({ OPENAI_API_KEY: '   ', OPENAI_BASE_URL: 'http://x/v1' }))).toEqual(['ollama', 'local']);
  });

  it('honours OPENAI_BASE_URL and OPENAI_MODELS', () => {
    const set = createProviders({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: ' https://gateway.example/v1 ', OPENAI_MODELS: 'gpt-4o-mini, gpt-4o' });
    expect(config(set, 'openai')).toMatchObject({ baseURL: 'https://gateway.example/v1', models: ['gpt-4o-mini', 'gpt-4o'] });
  });

  it('explains a request for an openai model without a key', async () => {
    const router = new LlmRouter(createProviders({}));
    await expect(router.complete({ model: 'openai/gpt-4o-mini', messages: user('hi') })).rejects.toThrow(/OPENAI_API_KEY/);
  });
});

describe('createProviders: several providers', () => {
  it('builds OpenAI plus OpenAI-compatible endpoints from SMARTSPEC_LLM_PROVIDERS, in order', () => {
    const set = createProviders({
      OPENAI_API_KEY: 'sk-openai',
      SMARTSPEC_LLM_PROVIDERS: 'groq, my-vllm',
      SMARTSPEC_LLM_GROQ_BASE_URL: 'https://api.groq.com/openai/v1',
      SMARTSPEC_LLM_GROQ_API_KEY: 'gsk',
      SMARTSPEC_LLM_GROQ_MODELS: 'llama-3.1-8b-instant',
      SMARTSPEC_LLM_GROQ_ALIASES: 'fast=llama-3.1-8b-instant',
      SMARTSPEC_LLM_MY_VLLM_BASE_URL: 'http://10.0.0.5:8000/v1',
      SMARTSPEC_LLM_MY_VLLM_TIMEOUT_MS: '5000',
      SMARTSPEC_LLM_MAX_RETRIES: '4',
    });
    expect(names(set)).toEqual(['openai', 'groq', 'my-vllm', 'ollama', 'local']);
    expect(config(set, 'groq')).toMatchObject({
      kind: 'openai-compatible',
      apiKey: 'gsk',
      models: ['llama-3.1-8b-instant'],
      aliases: { fast: 'llama-3.1-8b-instant' },
      maxRetries: 4,
    });
    expect(config(set, 'my-vllm')).toMatchObject({ models: ['*'], timeoutMs: 5000, maxRetries: 4 });
    expect(config(set, 'my-vllm')?.apiKey).toBeUndefined();
    // Routing sees them all: an alias of one, an explicit model of another.
    const router = new LlmRouter(set);
    expect(router.resolve('fast')).toEqual({ provider: 'groq', model: 'llama-3.1-8b-instant' });
    expect(router.resolve('my-vllm/qwen2.5')).toEqual({ provider: 'my-vllm', model: 'qwen2.5' });
    expect(router.resolve('gpt-4o')).toEqual({ provider: 'openai', model: 'gpt-4o' });
  });

  it('names the missing variable of a listed provider', () => {
    expect(() => createProviders({ SMARTSPEC_LLM_PROVIDERS: 'groq' })).toThrow(/SMARTSPEC_LLM_GROQ_BASE_URL/);
    expect(() => createProviders({ SMARTSPEC_LLM_PROVIDERS: 'ollama', SMARTSPEC_LLM_OLLAMA_BASE_URL: 'http://x' })).toThrow(LlmConfigError);
    expect(() => createProviders({ SMARTSPEC_LLM_TIMEOUT_MS: 'soon' })).toThrow(/SMARTSPEC_LLM_TIMEOUT_MS/);
  });

  it('reads a YAML config file: new providers, keys from env, refinements, fallbacks, default model', () => {
    const file = join(dir, 'llm.yaml');
    writeFileSync(
      file,
      [
        'defaultModel: together/mixtral',
        'providers:',
        '  - name: together',
        '    baseURL: https://api.together.xyz/v1',
        '    apiKeyEnv: TOGETHER_API_KEY',
        '    models: [mixtral]',
        '  - name: lmstudio',
        '    baseURL: http://127.0.0.1:1234/v1',
        '    apiKeyEnv: LMSTUDIO_KEY',
        '  - name: openai',
        '    models: [gpt-4o-mini]',
        '    aliases: { mini: gpt-4o-mini }',
        'fallbacks:',
        '  mini: [together/mixtral]',
      ].join('\n'),
    );
    const set = createProviders({ OPENAI_API_KEY: 'sk', TOGETHER_API_KEY: 'tk', SMARTSPEC_LLM_FALLBACK: 'local/echo' }, file);
    expect(names(set)).toEqual(['openai', 'together', 'lmstudio', 'ollama', 'local']);
    expect(config(set, 'together')).toMatchObject({ apiKey: 'tk', enabled: true, kind: 'openai-compatible' });
    expect(config(set, 'lmstudio')).toMatchObject({ enabled: false, disabledReason: expect.stringContaining('LMSTUDIO_KEY') });
    expect(config(set, 'openai')).toMatchObject({ apiKey: 'sk', models: ['gpt-4o-mini'], aliases: { mini: 'gpt-4o-mini' } });
    expect(set.fallbacks).toEqual({ mini: ['together/mixtral'], '*': ['local/echo'] });
    expect(new LlmRouter(set).resolve('default')).toEqual({ provider: 'together', model: 'mixtral' });
  });

  it('finds the file through SMARTSPEC_LLM_CONFIG, and rejects a bad one naming the path', () => {
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ providers: [{ name: 'box', baseURL: 'http://127.0.0.1:9/v1' }] }));
    expect(names(createProviders({ SMARTSPEC_LLM_CONFIG: good }))).toContain('box');

    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ providers: [{ name: 'box', baseURL: 'not a url', models: [] }] }));
    expect(() => createProviders({}, bad)).toThrow(/providers\.0\.baseURL/);
    expect(() => createProviders({}, join(dir, 'missing.yaml'))).toThrow(/cannot read LLM config file/);
  });

  it('reads structuredOutputs from SMARTSPEC_LLM_<NAME>_STRUCTURED_OUTPUTS and the file, unset meaning supported', () => {
    const env = { SMARTSPEC_LLM_PROVIDERS: 'a,b,c', SMARTSPEC_LLM_A_BASE_URL: 'http://a/v1', SMARTSPEC_LLM_B_BASE_URL: 'http://b/v1', SMARTSPEC_LLM_C_BASE_URL: 'http://c/v1' };
    const set = createProviders({ ...env, SMARTSPEC_LLM_A_STRUCTURED_OUTPUTS: 'false', SMARTSPEC_LLM_B_STRUCTURED_OUTPUTS: 'yes' }, { providers: [{ name: 'c', structuredOutputs: false }] });
    expect([config(set, 'a')?.structuredOutputs, config(set, 'b')?.structuredOutputs, config(set, 'c')?.structuredOutputs]).toEqual([false, true, false]);
    expect(config(createProviders(env), 'a')).not.toHaveProperty('structuredOutputs');
    expect(() => createProviders({ ...env, SMARTSPEC_LLM_A_STRUCTURED_OUTPUTS: 'maybe' })).toThrow(/SMARTSPEC_LLM_A_STRUCTURED_OUTPUTS must be true or false, got 'maybe'/);
  });

  it('never puts API keys into the summary', () => {
    const summary = summarizeProviders(createProviders({ OPENAI_API_KEY: 'sk-secret' }));
    expect(JSON.stringify(summary)).not.toContain('sk-secret');
    expect(summary.find((s) => s.name === 'openai')?.hasApiKey).toBe(true);
  });
});

describe('createProviders: Ollama and local', () => {
  it('reports Ollama as disabled by default, even when OLLAMA_BASE_URL is set', () => {
    for (const env of [{}, { OLLAMA_BASE_URL: 'http://gpu-box:11434' }]) {
      const ollama = config(createProviders(env), 'ollama');
      expect(ollama?.enabled).toBe(false);
      expect(ollama?.disabledReason).toContain('OLLAMA_ENABLED=true');
    }
    expect(config(createProviders({ OLLAMA_BASE_URL: 'http://gpu-box:11434' }), 'ollama')?.baseURL).toBe('http://gpu-box:11434/v1');
  });

  it('enables Ollama with OLLAMA_ENABLED=true', () => {
    const set = createProviders({ OLLAMA_ENABLED: 'true', OLLAMA_MODELS: 'llama3.2' });
    expect(config(set, 'ollama')).toMatchObject({ enabled: true, baseURL: 'http://127.0.0.1:11434/v1', models: ['llama3.2'] });
    expect(config(set, 'ollama')?.disabledReason).toBeUndefined();
    expect(new LlmRouter(set).resolve('llama3.2')).toEqual({ provider: 'ollama', model: 'llama3.2' });
  });

  it('answers a request for a disabled Ollama model with how to enable it, without any network call', async () => {
    const router = new LlmRouter(createProviders({ OLLAMA_BASE_URL: 'http://127.0.0.1:9/v1', OLLAMA_MODELS: 'llama3.2' }));
    for (const model of ['ollama/llama3.2', 'llama3.2']) {
      const err = await router.complete({ model, messages: user('hi') }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderDisabledError);
      expect((err as Error).message).toMatch(/provider 'ollama'.*disabled.*OLLAMA_ENABLED=true/);
    }
    // A bare name no enabled provider serves points at the disabled passthrough.
    const passthrough = new LlmRouter(createProviders({}));
    const err = await passthrough.complete({ model: 'qwen2.5', messages: user('hi') }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect((err as Error).message).toContain("'ollama/qwen2.5'");
    expect((err as Error).message).toContain('OLLAMA_ENABLED=true');
  });

  it('always has the local provider, and `default` points at it unless configured', () => {
    const set = createProviders({});
    expect(config(set, 'local')).toMatchObject({ kind: 'local', models: ['echo'], enabled: true });
    expect(new LlmRouter(set).resolve('default')).toEqual({ provider: 'local', model: 'echo' });
    expect(new LlmRouter(createProviders({ OPENAI_API_KEY: 'k', SMARTSPEC_LLM_DEFAULT_MODEL: 'openai/gpt-4o-mini' })).resolve('default')).toEqual({
      provider: 'openai',
      model: 'gpt-4o-mini',
    });
    expect(() => createProviders({}, { providers: [{ name: 'local', baseURL: 'http://x/v1' }] })).toThrow(/built in/);
  });
});
