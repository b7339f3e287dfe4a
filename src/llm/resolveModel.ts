/**
 * Model name → (provider, real model). Pure. Rules, in order:
 * 1. a global alias is replaced by its target (aliases may chain);
 * 2. `provider/model`, when `provider` is a known provider: that provider,
 *    with its own alias table applied to `model`;
 * 3. a bare name (or a slashed name whose prefix is no provider, such as
 *    `meta-llama/Llama-3-8b`): the first provider that lists it or has it as
 *    an alias, else the first enabled passthrough (`*`) provider.
 * A match on a disabled provider is an error saying how to enable it.
 */
import { ModelNotFoundError, ProviderDisabledError } from './errors.js';
import type { ProviderConfig } from './types.js';

export interface ResolvedModel {
  provider: string;
  model: string;
}

/** How to enable the built-in providers when they are absent from the set. */
const ABSENT_HINTS: Record<string, string> = {
  openai: "provider 'openai' is not configured: set OPENAI_API_KEY",
};

export function resolveModel(
  name: string,
  providers: readonly ProviderConfig[],
  aliases: Readonly<Record<string, string>> = {},
  seen: ReadonlySet<string> = new Set(),
): ResolvedModel {
  const model = name.trim();
  if (!model) throw new ModelNotFoundError(name, 'no model given');

  const target = Object.hasOwn(aliases, model) ? aliases[model] : undefined;
  if (target !== undefined) {
    if (seen.has(model)) throw new ModelNotFoundError(model, `alias cycle: ${[...seen, model].join(' → ')}`);
    return resolveModel(target, providers, aliases, new Set([...seen, model]));
  }

  const slash = model.indexOf('/');
  if (slash > 0) {
    const prefix = model.slice(0, slash);
    const rest = model.slice(slash + 1);
    const provider = providers.find((p) => p.name === prefix);
    if (provider) return onProvider(provider, rest, model);
    if (ABSENT_HINTS[prefix]) throw new ModelNotFoundError(model, ABSENT_HINTS[prefix]);
  }

  // A model named explicitly by a disabled provider is its model: say so rather than guess a passthrough.
  const explicit = providers.find((p) => Object.hasOwn(p.aliases, model) || p.models.includes(model));
  if (explicit && !explicit.enabled) throw new ProviderDisabledError(explicit.name, model, explicit.disabledReason ?? 'it is disabled');
  const chosen = explicit ?? providers.find((p) => p.enabled && p.models.includes('*'));
  if (chosen) return { provider: chosen.name, model: Object.hasOwn(chosen.aliases, model) ? chosen.aliases[model] : model };

  const passthrough = providers.filter((p) => !p.enabled && p.models.includes('*'));
  const hint = passthrough.length
    ? passthrough.map((p) => `provider '${p.name}' might serve it as '${p.name}/${model}' but is disabled: ${p.disabledReason ?? 'disabled'}`).join('; ')
    : `enabled providers serve: ${providerModelIds(providers).join(', ') || '(nothing)'}`;
  throw new ModelNotFoundError(model, hint);
}

function onProvider(provider: ProviderConfig, rest: string, requested: string): ResolvedModel {
  const real = Object.hasOwn(provider.aliases, rest) ? provider.aliases[rest] : rest;
  const served = provider.models.includes('*') || provider.models.includes(real) || provider.models.includes(rest);
  if (!served) throw new ModelNotFoundError(requested, `provider '${provider.name}' serves: ${[...provider.models, ...Object.keys(provider.aliases)].join(', ')}`);
  if (!provider.enabled) throw new ProviderDisabledError(provider.name, requested, provider.disabledReason ?? 'it is disabled');
  return { provider: provider.name, model: real };
}

/** Ids a client may use, for GET /v1/models: `provider/model` of enabled providers, then aliases that resolve. */
export function listModelIds(providers: readonly ProviderConfig[], aliases: Readonly<Record<string, string>> = {}): string[] {
  return listModels(providers, aliases).map((m) => m.id);
}

export function listModels(providers: readonly ProviderConfig[], aliases: Readonly<Record<string, string>> = {}): { id: string; provider: string }[] {
  const out = new Map<string, string>();
  for (const p of providers.filter((c) => c.enabled)) {
    for (const id of providerModelIds([p])) out.set(id, p.name);
  }
  const aliasIds = [...Object.keys(aliases), ...providers.filter((c) => c.enabled).flatMap((p) => Object.keys(p.aliases))];
  for (const alias of aliasIds) {
    if (out.has(alias)) continue;
    try {
      out.set(alias, resolveModel(alias, providers, aliases).provider);
    } catch {
      // An alias to a disabled or absent provider is not offered.
    }
  }
  return [...out].map(([id, provider]) => ({ id, provider }));
}

/** `provider/model` and `provider/alias` of enabled providers; passthrough `*` is not a model. */
function providerModelIds(providers: readonly ProviderConfig[]): string[] {
  return providers
    .filter((p) => p.enabled)
    .flatMap((p) => [...p.models.filter((m) => m !== '*'), ...Object.keys(p.aliases)].map((m) => `${p.name}/${m}`));
}
