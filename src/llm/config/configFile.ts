/** The optional LLM config file (JSON or YAML, SMARTSPEC_LLM_CONFIG): schema and loading. */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { LlmConfigError } from '../errors.js';

export const PROVIDER_NAME = /^[a-z0-9][a-z0-9._-]*$/;

const providerEntry = z.strictObject({
  name: z.string().regex(PROVIDER_NAME, 'lower-case letters, digits, ".", "_" or "-"'),
  kind: z.enum(['openai', 'openai-compatible', 'ollama']).optional(),
  baseURL: z.url().optional(),
  /** Prefer apiKeyEnv: keeps the secret out of the file. */
  apiKey: z.string().min(1).optional(),
  apiKeyEnv: z.string().min(1).optional(),
  models: z.array(z.string().min(1)).min(1).optional(),
  aliases: z.record(z.string().min(1), z.string().min(1)).optional(),
  timeoutMs: z.int().positive().optional(),
  maxRetries: z.int().min(0).max(10).optional(),
  /** false: the upstream does not take `response_format: json_schema` (JSON mode and the schema in the prompt instead). */
  structuredOutputs: z.boolean().optional(),
  enabled: z.boolean().optional(),
});

export const llmConfigFileSchema = z.strictObject({
  providers: z.array(providerEntry).optional(),
  /** Global aliases: name → model id (`provider/model`, another alias, or a bare name). */
  aliases: z.record(z.string().min(1), z.string().min(1)).optional(),
  /** model id or alias → models tried next, in order; key `*` applies to every request. */
  fallbacks: z.record(z.string().min(1), z.array(z.string().min(1))).optional(),
  /** The target of the `default` alias. */
  defaultModel: z.string().min(1).optional(),
  timeoutMs: z.int().positive().optional(),
  maxRetries: z.int().min(0).max(10).optional(),
});

export type LlmConfigFile = z.infer<typeof llmConfigFileSchema>;
export type ProviderEntry = z.infer<typeof providerEntry>;

/** Reads and validates the file; errors name the file and the offending path. */
export function loadLlmConfigFile(path: string): LlmConfigFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new LlmConfigError(`cannot read LLM config file ${path}: ${(err as Error).message}`, { file: path });
  }
  let data: unknown;
  try {
    data = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new LlmConfigError(`LLM config file ${path} does not parse: ${(err as Error).message}`, { file: path });
  }
  return parseLlmConfig(data, path);
}

export function parseLlmConfig(data: unknown, source = 'LLM config'): LlmConfigFile {
  const result = llmConfigFileSchema.safeParse(data ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((i) => ({ path: i.path.join('.') || '(root)', message: i.message }));
  throw new LlmConfigError(`${source}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, { source, issues });
}
