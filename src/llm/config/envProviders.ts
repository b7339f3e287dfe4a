/**
 * Provider configs from environment variables. Pure: reads only the `env`
 * object it is given. The variables are documented in src/llm/README.md.
 */
import { LlmConfigError } from '../errors.js';
import type { ProviderConfig } from '../types.js';
import { PROVIDER_NAME } from './configFile.js';

export type Env = Record<string, string | undefined>;

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_RETRIES = 2;
export const OPENAI_DEFAULT_BASE_URL = 'https://api.openai.com/v1';
export const OLLAMA_DEFAULT_BASE_URL = 'http://127.0.0.1:11434/v1';
/** Names with their own variables; not allowed in SMARTSPEC_LLM_PROVIDERS. */
export const RESERVED_PROVIDER_NAMES = ['openai', 'ollama', 'local'];

export interface EnvDefaults {
  timeoutMs: number;
  maxRetries: number;
}

/** Trimmed value, undefined when unset or blank (as the openai client reads env). */
export function readVar(env: Env, name: string): string | undefined {
  return env[name]?.trim() || undefined;
}

export function readInt(env: Env, name: string, min: number): number | undefined {
  const raw = readVar(env, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) throw new LlmConfigError(`${name} must be an integer >= ${min}, got '${raw}'`, { variable: name });
  return n;
}

export function readList(env: Env, name: string): string[] | undefined {
  const items = readVar(env, name)?.split(',').map((s) => s.trim()).filter(Boolean);
  return items?.length ? items : undefined;
}

/** `alias=model,alias2=model2`. */
export function readPairs(env: Env, name: string): Record<string, string> | undefined {
  const items = readList(env, name);
  if (!items) return undefined;
  const out: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0 || eq === item.length - 1) throw new LlmConfigError(`${name}: expected alias=model, got '${item}'`, { variable: name });
    out[item.slice(0, eq).trim()] = item.slice(eq + 1).trim();
  }
  return out;
}

/** true/1/yes/on or false/0/no/off; undefined when unset. */
export function readBool(env: Env, name: string): boolean | undefined {
  const raw = readVar(env, name);
  if (raw === undefined) return undefined;
  if (isTrue(raw)) return true;
  if (['false', '0', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new LlmConfigError(`${name} must be true or false, got '${raw}'`, { variable: name });
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && ['true', '1', 'yes', 'on'].includes(value.toLowerCase());
}

/** OpenAI: only when OPENAI_API_KEY is set; OPENAI_BASE_URL as the openai client reads it. */
export function openaiFromEnv(env: Env, defaults: EnvDefaults): ProviderConfig | undefined {
  const apiKey = readVar(env, 'OPENAI_API_KEY');
  if (!apiKey) return undefined;
  return {
    name: 'openai',
    kind: 'openai',
    baseURL: readVar(env, 'OPENAI_BASE_URL') ?? OPENAI_DEFAULT_BASE_URL,
    apiKey,
    models: readList(env, 'OPENAI_MODELS') ?? ['*'],
    aliases: {},
    timeoutMs: defaults.timeoutMs,
    maxRetries: defaults.maxRetries,
    enabled: true,
  };
}

/** SMARTSPEC_LLM_PROVIDERS=a,b with SMARTSPEC_LLM_<A>_BASE_URL etc. per name. */
export function compatibleFromEnv(env: Env, defaults: EnvDefaults): ProviderConfig[] {
  return (readList(env, 'SMARTSPEC_LLM_PROVIDERS') ?? []).map((name) => {
    if (!PROVIDER_NAME.test(name)) throw new LlmConfigError(`SMARTSPEC_LLM_PROVIDERS: invalid provider name '${name}'`, { name });
    if (RESERVED_PROVIDER_NAMES.includes(name)) {
      throw new LlmConfigError(`SMARTSPEC_LLM_PROVIDERS: '${name}' is built in and configured by its own variables`, { name });
    }
    const prefix = providerEnvPrefix(name);
    const baseURL = readVar(env, `${prefix}_BASE_URL`);
    if (!baseURL) throw new LlmConfigError(`provider '${name}' is listed in SMARTSPEC_LLM_PROVIDERS but ${prefix}_BASE_URL is not set`, { name });
    return {
      name,
      kind: 'openai-compatible',
      baseURL,
      apiKey: readVar(env, `${prefix}_API_KEY`),
      models: readList(env, `${prefix}_MODELS`) ?? ['*'],
      aliases: readPairs(env, `${prefix}_ALIASES`) ?? {},
      timeoutMs: readInt(env, `${prefix}_TIMEOUT_MS`, 1) ?? defaults.timeoutMs,
      maxRetries: readInt(env, `${prefix}_MAX_RETRIES`, 0) ?? defaults.maxRetries,
      ...optional('structuredOutputs', readBool(env, `${prefix}_STRUCTURED_OUTPUTS`)),
      enabled: true,
    };
  });
}

function optional<K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, V>);
}

/** `my-vllm` → `SMARTSPEC_LLM_MY_VLLM`. */
export function providerEnvPrefix(name: string): string {
  return `SMARTSPEC_LLM_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Ollama is always listed, and disabled unless OLLAMA_ENABLED=true: a URL alone never enables it. */
export function ollamaFromEnv(env: Env, defaults: EnvDefaults): ProviderConfig {
  const url = readVar(env, 'OLLAMA_BASE_URL');
  const enabled = isTrue(readVar(env, 'OLLAMA_ENABLED'));
  return {
    name: 'ollama',
    kind: 'ollama',
    baseURL: url ? ollamaOpenAiBase(url) : OLLAMA_DEFAULT_BASE_URL,
    models: readList(env, 'OLLAMA_MODELS') ?? ['*'],
    aliases: {},
    timeoutMs: defaults.timeoutMs,
    maxRetries: defaults.maxRetries,
    enabled,
    ...(enabled ? {} : { disabledReason: `set OLLAMA_ENABLED=true to enable it${url ? ' (OLLAMA_BASE_URL alone does not)' : ''}` }),
  };
}

/** Ollama's OpenAI-compatible API lives under /v1; accept the bare host users usually have. */
export function ollamaOpenAiBase(url: string): string {
  const trimmed = url.replace(/\/+$/, '');
  return /^https?:\/\/[^/]+$/i.test(trimmed) ? `${trimmed}/v1` : trimmed;
}
