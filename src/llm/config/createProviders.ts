/**
 * The provider factory: environment variables first, then the config file
 * (SMARTSPEC_LLM_CONFIG) refining or adding providers. Routing order is
 * openai, SMARTSPEC_LLM_PROVIDERS, new providers from the file, ollama, local.
 */
import { LocalProvider } from '../providers/localProvider.js';
import { registerProcessSecret } from '../../secrets/redact.js';
import { OpenAiProtocolProvider } from '../providers/openAiProtocolProvider.js';
import { LlmConfigError } from '../errors.js';
import type { LlmProvider, ProviderConfig } from '../types.js';
import { loadLlmConfigFile, parseLlmConfig, type LlmConfigFile, type ProviderEntry } from './configFile.js';
import {
  DEFAULT_MAX_RETRIES,
  DEFAULT_TIMEOUT_MS,
  OPENAI_DEFAULT_BASE_URL,
  compatibleFromEnv,
  ollamaFromEnv,
  openaiFromEnv,
  readInt,
  readList,
  readPairs,
  readVar,
  type EnvDefaults,
  type Env,
} from './envProviders.js';

export const DEFAULT_MODEL = 'local/echo';

/** Everything the router needs. */
export interface ProviderSet {
  /** Enabled and disabled, in routing order; `local` is always last. */
  providers: LlmProvider[];
  /** Global aliases (alias → model id); `default` is always present. */
  aliases: Record<string, string>;
  /** model id or alias → models tried next; `*` applies to every request. */
  fallbacks: Record<string, string[]>;
}

/** A provider's config without its secret, for logs, the CLI and health output. */
export type ProviderSummary = Omit<ProviderConfig, 'apiKey'> & { hasApiKey: boolean };

export function createProviders(env: Env = process.env, configFile?: string | LlmConfigFile): ProviderSet {
  const filePath = typeof configFile === 'string' ? configFile : configFile === undefined ? readVar(env, 'SMARTSPEC_LLM_CONFIG') : undefined;
  const file = filePath ? loadLlmConfigFile(filePath) : configFile === undefined ? {} : parseLlmConfig(configFile);
  const source = filePath ?? 'LLM config';

  const defaults: EnvDefaults = {
    timeoutMs: readInt(env, 'SMARTSPEC_LLM_TIMEOUT_MS', 1) ?? file.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxRetries: readInt(env, 'SMARTSPEC_LLM_MAX_RETRIES', 0) ?? file.maxRetries ?? DEFAULT_MAX_RETRIES,
  };

  const openai = openaiFromEnv(env, defaults);
  const head: ProviderConfig[] = [...(openai ? [openai] : []), ...compatibleFromEnv(env, defaults)];
  const fromFile: ProviderConfig[] = [];
  let ollama = ollamaFromEnv(env, defaults);

  const seen = new Set<string>();
  for (const entry of file.providers ?? []) {
    if (seen.has(entry.name)) throw new LlmConfigError(`${source}: provider '${entry.name}' is listed twice`, { source, provider: entry.name });
    seen.add(entry.name);
    if (entry.name === 'local') throw new LlmConfigError(`${source}: provider 'local' is built in and cannot be configured`, { source });
    if (entry.name === 'ollama') {
      ollama = refine(ollama, entry, env, defaults, source) ?? ollama;
      continue;
    }
    const index = head.findIndex((c) => c.name === entry.name);
    const refined = refine(head[index], entry, env, defaults, source);
    if (index >= 0) {
      if (refined) head[index] = refined;
      else head.splice(index, 1);
    } else if (refined) {
      fromFile.push(refined);
    }
  }

  const configs = [...head, ...fromFile, ollama];
  // An upstream error that echoes the key is redacted wherever it goes (src/secrets/redact.ts).
  for (const c of configs) if (c.apiKey) registerProcessSecret(c.name === 'openai' ? 'OPENAI_API_KEY' : `${c.name.toUpperCase()}_API_KEY`, c.apiKey);
  const providers: LlmProvider[] = [
    ...configs.map((c) => new OpenAiProtocolProvider(c)),
    new LocalProvider({ timeoutMs: defaults.timeoutMs }),
  ];

  const aliases: Record<string, string> = {
    ...file.aliases,
    ...readPairs(env, 'SMARTSPEC_LLM_ALIASES'),
    default: readVar(env, 'SMARTSPEC_LLM_DEFAULT_MODEL') ?? file.defaultModel ?? file.aliases?.default ?? DEFAULT_MODEL,
  };
  const envFallback = readList(env, 'SMARTSPEC_LLM_FALLBACK');
  const fallbacks: Record<string, string[]> = { ...file.fallbacks, ...(envFallback ? { '*': envFallback } : {}) };

  return { providers, aliases, fallbacks };
}

/**
 * A file entry applied over the env-built config of the same name (the fields
 * it sets win), or a new provider. Undefined: OpenAI without any API key.
 */
function refine(base: ProviderConfig | undefined, entry: ProviderEntry, env: Env, defaults: EnvDefaults, source: string): ProviderConfig | undefined {
  const kind = entry.kind ?? base?.kind ?? (entry.name === 'openai' ? 'openai' : 'openai-compatible');
  const keyFromEnv = entry.apiKeyEnv ? readVar(env, entry.apiKeyEnv) : undefined;
  const apiKey = entry.apiKey ?? keyFromEnv ?? base?.apiKey ?? (kind === 'openai' ? readVar(env, 'OPENAI_API_KEY') : undefined);
  if (kind === 'openai' && !apiKey) return undefined;

  const baseURL = entry.baseURL ?? base?.baseURL ?? (kind === 'openai' ? readVar(env, 'OPENAI_BASE_URL') ?? OPENAI_DEFAULT_BASE_URL : undefined);
  if (!baseURL) throw new LlmConfigError(`${source}: provider '${entry.name}' needs a baseURL`, { source, provider: entry.name });

  const missingKey = entry.apiKeyEnv !== undefined && keyFromEnv === undefined && entry.apiKey === undefined;
  const enabled = !missingKey && (entry.enabled ?? base?.enabled ?? true);
  const disabledReason = enabled
    ? undefined
    : missingKey
      ? `its API key variable ${entry.apiKeyEnv} is not set`
      : entry.enabled === false
        ? `disabled in ${source}`
        : base?.disabledReason;

  return {
    name: entry.name,
    kind,
    baseURL,
    ...(apiKey ? { apiKey } : {}),
    models: entry.models ?? base?.models ?? ['*'],
    aliases: { ...base?.aliases, ...entry.aliases },
    timeoutMs: entry.timeoutMs ?? base?.timeoutMs ?? defaults.timeoutMs,
    maxRetries: entry.maxRetries ?? base?.maxRetries ?? defaults.maxRetries,
    ...((entry.structuredOutputs ?? base?.structuredOutputs) !== undefined ? { structuredOutputs: entry.structuredOutputs ?? base?.structuredOutputs } : {}),
    enabled,
    ...(disabledReason ? { disabledReason } : {}),
  };
}

export function summarizeProviders(set: ProviderSet): ProviderSummary[] {
  return set.providers.map(({ config: { apiKey, ...rest } }) => ({ ...rest, hasApiKey: Boolean(apiKey) }));
}
