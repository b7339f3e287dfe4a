/**
 * JSON Schemas for `llm` step answers, with ajv: checking a schema when a
 * definition is validated, and checking an answer against it when the step
 * runs. Pure (ajv compiles to code, it does no I/O; remote `$ref`s are refused).
 *
 * The draft follows `$schema` (2020-12 when absent). Unknown keywords and
 * unknown formats are refused (ajv's strictSchema), so a typo such as
 * `requird` is a definition error rather than a check that silently never runs.
 * Patterns that may backtrack for exponential time are refused too.
 */
import { LRUCache } from 'lru-cache';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import formats from 'ajv-formats';
import safeRegex from 'safe-regex2';

export type JsonSchema = Record<string, unknown>;

export interface SchemaProblem {
  /** Where in the schema, as path segments (`['properties', 'category', 'type']`); empty for the schema itself. */
  at: (string | number)[];
  message: string;
}

/** Checks an answer; returns readable problems (empty when it matches). */
export type AnswerCheck = (value: unknown) => string[];

const OPTIONS: Options = {
  allErrors: true,
  strict: false,
  strictSchema: true,
  strictNumbers: true,
  logger: false,
  // No registry of `$id`s: two definitions may use the same id for different schemas.
  addUsedSchema: false,
};

/** Validators kept, and compiles per ajv instance. */
const MAX_COMPILED = 256;

const DRAFTS = [
  { match: /json-schema\.org\/draft-07\/schema/, make: () => new Ajv(OPTIONS) },
  { match: /json-schema\.org\/draft\/2019-09\/schema/, make: () => new Ajv2019(OPTIONS) },
  { match: /json-schema\.org\/draft\/2020-12\/schema/, make: () => new Ajv2020(OPTIONS) },
] as const;

/**
 * An ajv instance keeps every schema it compiled (its code scope), even after
 * removeSchema: each one is replaced after MAX_COMPILED compiles, so a worker
 * that sees endless distinct schemas stays within bounded memory.
 */
interface Instance { ajv: Ajv; compiles: number }
const instances = new Map<number, Instance>();
function ajvFor(schema: JsonSchema): Instance | undefined {
  const declared = schema.$schema;
  const index = declared === undefined ? 2 : DRAFTS.findIndex((d) => typeof declared === 'string' && d.match.test(declared));
  if (index < 0) return undefined;
  let entry = instances.get(index);
  if (!entry || entry.compiles >= MAX_COMPILED) {
    const ajv = DRAFTS[index].make();
    formats.default(ajv);
    entry = { ajv, compiles: 0 };
    instances.set(index, entry);
  }
  return entry;
}

/** What is wrong with a schema for an `llm` step (empty when nothing is). */
export function schemaProblems(schema: JsonSchema): SchemaProblem[] {
  const instance = ajvFor(schema);
  if (!instance) {
    return [{ at: ['$schema'], message: `unsupported $schema '${String(schema.$schema)}' (use draft-07, 2019-09 or 2020-12, or leave it out for 2020-12)` }];
  }
  const { ajv } = instance;
  try {
    if (!ajv.validateSchema(schema)) return metaProblems(schema, ajv.errors ?? []);
    compile(instance, schema);
  } catch (err) {
    // Unknown keywords and formats, references that do not resolve, patterns that do not parse.
    const message = (err as Error).message;
    return [{ at: whereInSchema(schema, message), message }];
  }
  // Providers' structured output and JSON mode both produce an object.
  if (schema.type !== 'object') return [{ at: ['type'], message: `the answer's schema must describe an object: give "type": "object" at its root` }];
  return riskyPatterns(schema);
}

/** The schema's problems against its meta-schema, one per place, with the segments walked in the schema. */
function metaProblems(schema: JsonSchema, errors: ErrorObject[]): SchemaProblem[] {
  const byPath = new Map<string, SchemaProblem>();
  for (const e of errors) {
    if (byPath.has(e.instancePath)) continue; // an anyOf reports each branch; the first says it best
    byPath.set(e.instancePath, { at: pointerSegments(schema, e.instancePath), message: describe(e) });
  }
  return [...byPath.values()];
}

const compiled = new LRUCache<string, ValidateFunction>({ max: MAX_COMPILED });

function compile(instance: Instance, schema: JsonSchema): ValidateFunction {
  const key = JSON.stringify(schema);
  const hit = compiled.get(key);
  if (hit) return hit;
  instance.compiles++;
  const validate = instance.ajv.compile(schema);
  instance.ajv.removeSchema(schema);
  compiled.set(key, validate);
  return validate;
}

/**
 * A checker for answers. The schema was checked at definition validation;
 * one that still does not compile (a definition stored before that check)
 * throws here.
 */
export function answerCheck(schema: JsonSchema): AnswerCheck {
  const instance = ajvFor(schema);
  if (!instance) throw new Error(`unsupported $schema '${String(schema.$schema)}'`);
  const validate = compile(instance, schema);
  return (value) => (validate(value) ? [] : (validate.errors ?? []).slice(0, MAX_REPORTED).map((e) => `${e.instancePath || '(root)'} ${describe(e)}`));
}

/** A follow-up message need not list hundreds of problems. */
const MAX_REPORTED = 20;

/** ajv's message with the facts it leaves in params (allowed values, the extra property). */
function describe(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'enum' && Array.isArray(p.allowedValues)) return `${e.message}: ${p.allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
  if (e.keyword === 'const') return `${e.message}: ${JSON.stringify(p.allowedValue)}`;
  if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') {
    const extra = p.additionalProperty ?? p.unevaluatedProperty;
    return `${e.message}: ${JSON.stringify(extra)}`;
  }
  return e.message ?? e.keyword;
}

/** `/properties/a/items/0` → ['properties', 'a', 'items', 0]: numbers only where the schema holds an array. */
function pointerSegments(root: unknown, pointer: string): (string | number)[] {
  const out: (string | number)[] = [];
  let node = root;
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node) && /^\d+$/.test(seg)) {
      out.push(Number(seg));
      node = node[Number(seg)];
    } else {
      out.push(seg);
      node = node && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}

/** Keywords whose value is a schema, a list of schemas, or a map of names to schemas: where subschemas are. */
const SUBSCHEMA = new Set(['not', 'if', 'then', 'else', 'contains', 'propertyNames', 'additionalProperties', 'additionalItems', 'unevaluatedProperties', 'unevaluatedItems', 'items', 'prefixItems', 'allOf', 'anyOf', 'oneOf']);
const SUBSCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas']);

/**
 * ajv's compile errors name a keyword (`unknown keyword: "requird"`) or a
 * place (`at path "#/properties/e"`) but not both ways: find it in the schema.
 */
function whereInSchema(schema: JsonSchema, message: string): (string | number)[] {
  const place = /at path "#([^"]*)"/.exec(message)?.[1];
  if (place !== undefined) return pointerSegments(schema, place);
  const keyword = /unknown keyword: "([^"]+)"/.exec(message)?.[1];
  return keyword === undefined ? [] : (findKeyword(schema, keyword) ?? []);
}

/** Calls `visit` on the schema and every subschema in it, with its place. */
function eachSubschema(node: unknown, at: (string | number)[], visit: (schema: Record<string, unknown>, at: (string | number)[]) => void): void {
  if (!node || typeof node !== 'object' || Array.isArray(node)) return;
  const record = node as Record<string, unknown>;
  visit(record, at);
  for (const [key, value] of Object.entries(record)) {
    if (SUBSCHEMA_MAPS.has(key) && value && typeof value === 'object') {
      for (const [name, sub] of Object.entries(value)) eachSubschema(sub, [...at, key, name], visit);
    } else if (SUBSCHEMA.has(key)) {
      if (Array.isArray(value)) value.forEach((sub, i) => eachSubschema(sub, [...at, key, i], visit));
      else eachSubschema(value, [...at, key], visit);
    }
  }
}

function findKeyword(schema: JsonSchema, keyword: string): (string | number)[] | undefined {
  let found: (string | number)[] | undefined;
  eachSubschema(schema, [], (node, at) => {
    if (!found && Object.hasOwn(node, keyword)) found = [...at, keyword];
  });
  return found;
}

/**
 * Patterns run against model answers in the worker's thread: one with nested
 * repetition (`(a+)+`) can take exponential time on some answers and stall
 * every execution there. safe-regex2 finds those (star height > 1).
 */
function riskyPatterns(schema: JsonSchema): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const risky = (pattern: string) => !safeRegex(pattern);
  eachSubschema(schema, [], (node, at) => {
    if (typeof node.pattern === 'string' && risky(node.pattern)) problems.push({ at: [...at, 'pattern'], message: riskyMessage(node.pattern) });
    const patterns = node.patternProperties;
    if (patterns && typeof patterns === 'object') {
      for (const key of Object.keys(patterns)) if (risky(key)) problems.push({ at: [...at, 'patternProperties', key], message: riskyMessage(key) });
    }
  });
  return problems;
}

function riskyMessage(pattern: string): string {
  return `the pattern ${JSON.stringify(pattern)} nests repetition (like (a+)+), which can take exponential time on some answers: write it without a repeated group that itself repeats`;
}
