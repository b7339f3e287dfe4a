/**
 * Redaction: what is recorded (outputs, errors), logged or answered never
 * carries a secret's value.
 *
 * - Known values: the secrets an execution used, and the process's own
 *   credentials (LLM provider API keys, registered when the providers are
 *   built), each replaced by `[REDACTED:NAME]`.
 * - Error texts from upstreams (HTTP bodies, LLM errors) also lose whatever
 *   looks like a credential: Bearer tokens, `sk-…` keys, Authorization and
 *   api-key fields. Outputs keep such shapes: they are data, not error texts.
 */

/** Values this short would redact ordinary text; secrets are longer than this. */
const MIN_LENGTH = 4;

/** The process's own credentials, by name (e.g. OPENAI_API_KEY). */
const processSecrets = new Map<string, string>();

export function registerProcessSecret(name: string, value: string): void {
  if (value.length >= MIN_LENGTH) processSecrets.set(value, name);
}

/** value → name. */
export type KnownSecrets = ReadonlyMap<string, string>;

/**
 * A function replacing every known value (longest first, so a value inside
 * another is not split); undefined when nothing is known, so callers skip the walk.
 */
export function knownRedactor(known: KnownSecrets = new Map()): ((text: string) => string) | undefined {
  const pairs = [...known, ...processSecrets].filter(([v]) => v.length >= MIN_LENGTH).sort((a, b) => b[0].length - a[0].length);
  if (pairs.length === 0) return undefined;
  return (text) => {
    let out = text;
    for (const [value, name] of pairs) if (out.includes(value)) out = out.split(value).join(`[REDACTED:${name}]`);
    return out;
  };
}

export function redactKnown(text: string, known?: KnownSecrets): string {
  return knownRedactor(known)?.(text) ?? text;
}

const CREDENTIAL_SHAPES: [RegExp, string][] = [
  [/\b(Bearer|Basic|Token)\s+(?!\[REDACTED)[A-Za-z0-9._~+/=:-]{6,}/gi, '$1 [REDACTED]'],
  [/(\/\/)[^\s/@:]+:[^\s/@]+@/g, '$1[REDACTED]@'],
  [/\bsk-(?!\[REDACTED)[A-Za-z0-9_-]{6,}/g, '[REDACTED]'],
  [/((?:proxy-)?authorization|x-api-key|api[-_]?key)(["']?\s*[:=]\s*["']?)(?!\[REDACTED|Bearer |Basic |Token )[^\s"',}]{4,}/gi, '$1$2[REDACTED]'],
];

/** For error texts: known values, then anything shaped like a credential. */
export function redactErrorText(text: string, known: KnownSecrets = new Map()): string {
  let out = redactKnown(text, known);
  for (const [shape, replacement] of CREDENTIAL_SHAPES) out = out.replace(shape, replacement);
  return out;
}

/** Apply `redact` to every string (and key) inside a JSON-like value. */
export function redactDeep<T>(value: T, redact: (s: string) => string): T {
  if (typeof value === 'string') return redact(value) as T;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, redact)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [redact(k), redactDeep(v, redact)])) as T;
  }
  return value;
}
