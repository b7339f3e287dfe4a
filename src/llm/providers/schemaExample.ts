/**
 * A value built from a JSON Schema, for the offline `local` provider's
 * structured output: deterministic, and matching the schema whenever the
 * common keywords suffice (types, properties, required, enum, const, items,
 * min/max, formats, anyOf/oneOf, local `$ref`s). Patterns are not solved:
 * such an answer fails the step's check like any model's would.
 * An `enum` takes the first of its values that the prompt mentions as a
 * word (so `Classify: the app crashes, a bug` picks `bug`), else its first.
 */
type Schema = Record<string, unknown>;

const MAX_DEPTH = 12;
/** Below this depth, optional properties and one array item are filled in too. */
const SHALLOW = 4;
/** Bounds on what a schema can make us build (it comes from a definition: a huge minItems must not take the worker down). */
const MAX_NODES = 10_000;
const MAX_ITEMS = 100;
const MAX_STRING = 1_000;

const FORMATS: Record<string, string> = {
  'date-time': '2000-01-01T00:00:00Z',
  date: '2000-01-01',
  time: '00:00:00Z',
  email: 'local@example.com',
  uri: 'https://example.com/',
  url: 'https://example.com/',
  uuid: '00000000-0000-4000-8000-000000000000',
  ipv4: '192.0.2.1',
  ipv6: '2001:db8::1',
  hostname: 'example.com',
};

export function schemaExample(schema: Schema, prompt: string): unknown {
  return build(schema, { root: schema, prompt, depth: 0, nodes: { left: MAX_NODES } });
}

interface Ctx {
  root: Schema;
  prompt: string;
  depth: number;
  /** Shared by the whole build. */
  nodes: { left: number };
}

function build(schema: unknown, ctx: Ctx): unknown {
  if (!schema || typeof schema !== 'object' || ctx.depth > MAX_DEPTH || ctx.nodes.left-- <= 0) return null;
  const s = schema as Schema;
  const deeper = { ...ctx, depth: ctx.depth + 1 };
  if (typeof s.$ref === 'string') return build(localRef(ctx.root, s.$ref), deeper);
  if ('const' in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) return pickEnum(s.enum, ctx.prompt);
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
    if (Array.isArray(s[key]) && (s[key] as unknown[]).length && s.type === undefined && s.properties === undefined) return build((s[key] as unknown[])[0], deeper);
  }
  switch (typeOf(s)) {
    case 'object': {
      const properties = (s.properties ?? {}) as Record<string, unknown>;
      const required = Array.isArray(s.required) ? (s.required as string[]) : [];
      // No prototype: a property named `__proto__` or `toString` is just a property.
      const out: Record<string, unknown> = Object.create(null);
      // Deep down only what is required: a recursive schema stays small.
      for (const [name, sub] of Object.entries(properties)) if (ctx.depth < SHALLOW || required.includes(name)) out[name] = build(sub, deeper);
      for (const name of required) if (!Object.hasOwn(out, name)) out[name] = ctx.prompt.slice(0, 40);
      return out;
    }
    case 'array': {
      const prefix = Array.isArray(s.prefixItems) ? (s.prefixItems as unknown[]) : [];
      const count = Math.max(prefix.length, num(s.minItems) ?? (ctx.depth < SHALLOW ? 1 : 0));
      const bounded = Math.min(count, num(s.maxItems) ?? count, MAX_ITEMS);
      return Array.from({ length: bounded }, (_, i) => build(i < prefix.length ? prefix[i] : s.items, deeper));
    }
    case 'string':
      return stringFor(s, ctx.prompt);
    case 'integer':
    case 'number':
      return numberFor(s, typeOf(s) === 'integer');
    case 'boolean':
      return true;
    default:
      return null;
  }
}

function typeOf(s: Schema): string {
  const type = Array.isArray(s.type) ? (s.type.find((t) => t !== 'null') ?? 'null') : s.type;
  if (typeof type === 'string') return type;
  if (s.properties || s.required) return 'object';
  if (s.items || s.prefixItems) return 'array';
  return 'string';
}

function pickEnum(values: unknown[], prompt: string): unknown {
  const words = new Set(prompt.toLowerCase().match(/[\p{L}\p{N}_-]+/gu) ?? []);
  return values.find((v) => typeof v === 'string' && words.has(v.toLowerCase())) ?? values[0];
}

function stringFor(s: Schema, prompt: string): string {
  if (typeof s.format === 'string' && FORMATS[s.format]) return FORMATS[s.format];
  const min = Math.min(num(s.minLength) ?? 0, MAX_STRING);
  const max = num(s.maxLength) ?? 80;
  return prompt.replace(/\s+/g, ' ').trim().slice(0, Math.max(min, Math.min(max, 80))).padEnd(min, '.');
}

function numberFor(s: Schema, integer: boolean): number {
  const low = num(s.minimum) ?? (num(s.exclusiveMinimum) !== undefined ? num(s.exclusiveMinimum)! + (integer ? 1 : 0.5) : undefined);
  const high = num(s.maximum) ?? (num(s.exclusiveMaximum) !== undefined ? num(s.exclusiveMaximum)! - (integer ? 1 : 0.5) : undefined);
  let n = low ?? Math.min(0, high ?? 0);
  if (integer) n = Math.ceil(n);
  return n;
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** `#/$defs/x` and `#/definitions/x` inside the same schema; anything else gives null. */
function localRef(root: Schema, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return null;
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const seg = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    node = node && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
  }
  return node ?? null;
}
