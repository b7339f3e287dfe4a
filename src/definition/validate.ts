/**
 * Definition validation: shape (zod) plus the rules zod cannot express —
 * unique ids across the whole tree, nesting within MAX_NESTING, parallel
 * groups of consecutive steps, graph needs without cycles, templates and
 * expressions that read only steps certain to have run (references.ts).
 * Every problem names its path, and all are reported at once. Pure.
 */
import { LRUCache } from 'lru-cache';
import YAML from 'yaml';
import type { z } from 'zod';
import { DefinitionError } from '../errors.js';
import { definitionSchema, stepSchema, MAX_NESTING, STEP_TYPES, type Definition, type Step } from '../../machines/definition.js';
import { stepIndex, walkSteps } from '../../machines/blocks.js';
import { ISO_TIME_HINT, parseIsoTime } from './sleep.js';
import { limits } from '../limits.js';
import { checkOutbound } from './outboundRules.js';
import { checkReferences, type Issue } from './references.js';
import { checkTriggers } from './triggers.js';
import { checkConcurrency } from './concurrencyRules.js';
import { llmStepIssues } from '../llm/stepRules.js';
import { closest } from '../suggest.js';

export type { Issue };

export interface ValidateOptions {
  /** Most steps a definition may have; default SMARTSPEC_MAX_STEPS (src/limits.ts). */
  maxSteps?: number;
}

/** Parse JSON or YAML text, then validate. */
export function parseDefinition(text: string, source = 'definition', options: ValidateOptions = {}): Definition {
  return validateDefinition(parseDocument(text, source), options);
}

export function parseDocument(text: string, source = 'document'): unknown {
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[') || source.endsWith('.json')) {
    try {
      return JSON.parse(text);
    } catch (err) {
      const { line, column } = lineColumn(text, jsonErrorOffset(text, (err as Error).message));
      throw new DefinitionError([{ path: '(document)', message: `${source} is not valid JSON: ${(err as Error).message.replace(/, .*is not valid JSON$/s, '').replace(/ in JSON at position \d+.*$/s, '')} (line ${line}, column ${column})`, line, column }]);
    }
  }
  // Every syntax error of a YAML text at once, each with its place.
  const doc = YAML.parseDocument(text, { prettyErrors: true });
  if (doc.errors.length) {
    throw new DefinitionError(doc.errors.map((e) => {
      const pos = e.linePos?.[0];
      const message = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      return { path: '(document)', message: `${source} is not valid YAML: ${message}${pos ? ` (line ${pos.line}, column ${pos.col})` : ''}`, ...(pos ? { line: pos.line, column: pos.col } : {}) };
    }));
  }
  try {
    return doc.toJS();
  } catch (err) {
    // Well-formed YAML may still not be data: an alias to an anchor that is not set (`*a`), say.
    throw new DefinitionError([{ path: '(document)', message: `${source} is not valid YAML: ${(err as Error).message.split('\n')[0]}` }]);
  }
}

/**
 * Where JSON.parse gave up. Most messages name the position; "Unexpected token"
 * does not, so the shortest prefix that fails for a reason other than ending
 * early is found by bisection: its last character is the culprit.
 */
function jsonErrorOffset(text: string, message: string): number {
  const named = /at position (\d+)/.exec(message);
  if (named) return Number(named[1]);
  if (/end of JSON input/.test(message)) return text.length;
  const failsInside = (k: number) => {
    try {
      JSON.parse(text.slice(0, k));
      return false;
    } catch (err) {
      const m = (err as Error).message;
      const at = /at position (\d+)/.exec(m);
      return !/end of JSON input/.test(m) && !(at && Number(at[1]) >= k);
    }
  };
  let lo = 0;
  let hi = text.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (failsInside(mid)) hi = mid;
    else lo = mid;
  }
  return hi - 1;
}

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, offset));
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** Validate a parsed document; returns the definition with defaults applied. */
export function validateDefinition(doc: unknown, options: ValidateOptions = {}): Definition {
  // First, before any per-step work: a definition past the limits costs nothing to refuse.
  const tooMany = checkStepCount(doc, options.maxSteps ?? limits().maxSteps);
  if (tooMany) throw new DefinitionError([tooMany]);
  // The tree as written: nesting, step types and ids, reported together with zod's shape problems.
  const pre = checkTree(doc);
  const parsed = definitionSchema.safeParse(doc);
  const shape = parsed.success ? [] : zodIssues(parsed.error).filter((i) => !pre.some((p) => i.path.startsWith(p.path)));
  if (!parsed.success) {
    // Every problem at once: the references of the steps that do have a valid shape are checked too.
    const reported = [...pre, ...shape];
    const partial = wellShapedPart(doc);
    const refs = partial ? safely(() => checkReferences(partial)).filter((i) => !reported.some((r) => r.path === i.path)) : [];
    throw new DefinitionError([...reported, ...refs]);
  }
  const def = parsed.data;
  const llmIssues = [...walkSteps(def.steps)].flatMap(({ step, path }) => (step.type === 'llm' ? llmStepIssues(step, path) : []));
  const issues = [...pre, ...checkGroups(def), ...checkSleeps(def), ...checkNeeds(def), ...llmIssues, ...checkConcurrency(def)];
  if (issues.length === 0) issues.push(...checkReferences(def), ...checkSignals(def), ...checkOutbound(def), ...checkTriggers(def));
  if (issues.length) throw new DefinitionError(issues);
  return def;
}

/** Definitions validated in this process, by content (and step limit): see validateDefinitionCached. */
const validated = new LRUCache<string, Definition>({ max: 256 });
/** Larger definitions are validated every time: the cache stays within 256 × 64 KiB of keys. */
const MAX_CACHED_JSON = 64 * 1024;

/**
 * validateDefinition, remembered by the definition's content: the same workflow submitted again
 * (every execution of it, at the edge and at the worker its command reaches) is validated once
 * per process, and every execution of it shares one definition object, so the caches keyed
 * by definition or step object (compiled machine, initial snapshot, step index) hit as well.
 * Whoever published the command, a definition not seen before is validated in full; a failing
 * one is never remembered. The result is shared: it must not be modified.
 */
export function validateDefinitionCached(doc: unknown, options: ValidateOptions = {}): Definition {
  const json = JSON.stringify(doc);
  if (json === undefined || json.length > MAX_CACHED_JSON) return validateDefinition(doc, options);
  const key = `${options.maxSteps ?? limits().maxSteps}:${json}`;
  const known = validated.get(key);
  if (known) return known;
  const def = validateDefinition(doc, options);
  validated.set(key, def);
  return def;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${String(seg)}` : String(seg);
  return out || '(root)';
}

function zodIssues(error: z.ZodError): Issue[] {
  return error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
}

type Raw = Record<string, unknown>;
const isObject = (v: unknown): v is Raw => !!v && typeof v === 'object' && !Array.isArray(v);

/** The blocks of a step as written (before its shape is known to be right): [path, steps]. */
function rawBlocks(step: Raw): [string, unknown[]][] {
  const out: [string, unknown[]][] = [];
  switch (step.type) {
    case 'switch':
      if (Array.isArray(step.cases)) step.cases.forEach((c, i) => { if (isObject(c) && Array.isArray(c.steps)) out.push([`cases[${i}].steps`, c.steps]); });
      if (Array.isArray(step.default)) out.push(['default', step.default]);
      break;
    case 'parallel':
      if (isObject(step.branches)) for (const [name, b] of Object.entries(step.branches)) if (Array.isArray(b)) out.push([`branches.${name}`, b]);
      break;
    case 'map': case 'loop': case 'graph':
      if (Array.isArray(step.steps)) out.push(['steps', step.steps]);
      break;
    default: break;
  }
  return out;
}

/** Steps in the whole tree (nested no deeper than the limit: deeper ones are refused anyway). */
function countSteps(steps: unknown[], depth = 0): number {
  let n = steps.length;
  if (depth >= MAX_NESTING) return n;
  for (const s of steps) if (isObject(s)) for (const [, b] of rawBlocks(s)) n += countSteps(b, depth + 1);
  return n;
}

function checkStepCount(doc: unknown, maxSteps: number): Issue | undefined {
  const steps = (doc as { steps?: unknown })?.steps;
  if (!Array.isArray(steps)) return undefined;
  const count = countSteps(steps);
  if (count <= maxSteps) return undefined;
  return {
    path: 'steps',
    message: `${count.toLocaleString('en')} steps is more than the limit of ${maxSteps.toLocaleString('en')} per definition (SMARTSPEC_MAX_STEPS)`,
  };
}

/**
 * The tree as written: containers nested past MAX_NESTING, unknown step types (their own message
 * rather than zod's union error), and step ids used twice anywhere in the tree.
 */
function checkTree(doc: unknown): Issue[] {
  const steps = (doc as { steps?: unknown })?.steps;
  if (!Array.isArray(steps)) return [];
  const issues: Issue[] = [];
  const seen = new Map<string, string>();
  const walk = (list: unknown[], base: string, depth: number) => {
    list.forEach((s, i) => {
      const path = `${base}[${i}]`;
      if (!isObject(s)) return;
      const type = s.type;
      if (!(STEP_TYPES as readonly unknown[]).includes(type)) {
        issues.push({
          path: `${path}.type`,
          message: type === undefined ? `missing step type (one of ${STEP_TYPES.join(', ')})` : unknownStepType(type),
        });
      }
      if (typeof s.id === 'string') {
        const first = seen.get(s.id);
        if (first !== undefined) issues.push({ path: `${path}.id`, message: `duplicate step id '${s.id}' (also ${first})` });
        else seen.set(s.id, path);
      }
      const blocks = rawBlocks(s);
      if (blocks.length && depth >= MAX_NESTING) {
        issues.push({ path, message: `containers nest deeper than ${MAX_NESTING} levels (the limit; see docs/workflow-definitions.md)` });
        return;
      }
      for (const [sub, b] of blocks) walk(b, `${path}.${sub}`, depth + 1);
    });
  };
  walk(steps, 'steps', 0);
  return issues;
}

function checkGroups(def: Definition): Issue[] {
  const index = new Map(def.steps.map((s, i) => [s.id, i]));
  const owner = new Map<string, number>();
  const issues: Issue[] = [];
  def.parallel.forEach((group, g) => {
    const positions: number[] = [];
    group.forEach((id, j) => {
      const path = `parallel[${g}][${j}]`;
      const pos = index.get(id);
      if (pos === undefined) {
        const inner = stepIndex(def).get(id);
        return issues.push({ path, message: inner ? `step '${id}' is inside a container (${inner.path}): groups are of top-level steps (use a parallel step inside)` : `unknown step id '${id}'` });
      }
      const other = owner.get(id);
      if (other !== undefined) {
        return issues.push({ path, message: other === g ? `step '${id}' is listed twice in this group` : `step '${id}' is already in parallel[${other}]` });
      }
      owner.set(id, g);
      positions.push(pos);
    });
    positions.sort((a, b) => a - b);
    for (let k = 1; k < positions.length; k++) {
      if (positions[k] !== positions[k - 1] + 1) {
        const between = def.steps.slice(positions[k - 1] + 1, positions[k]).map((s) => s.id);
        issues.push({
          path: `parallel[${g}]`,
          message: `steps of a group must be consecutive in 'steps': ${between.map((b) => `'${b}'`).join(', ')} stand between '${def.steps[positions[k - 1]].id}' and '${def.steps[positions[k]].id}'`,
        });
        break;
      }
    }
  });
  return issues;
}

/** `needs` only inside a graph, naming steps of that graph, without cycles (each cycle named once). */
function checkNeeds(def: Definition): Issue[] {
  const issues: Issue[] = [];
  for (const { step, path, ancestors } of walkSteps(def.steps)) {
    const parent = ancestors[ancestors.length - 1];
    if (step.needs && parent?.type !== 'graph') issues.push({ path: `${path}.needs`, message: `'needs' is only for the steps of a graph` });
    if (step.type !== 'graph') continue;
    const members = new Map(step.steps.map((s, i) => [s.id, i]));
    step.steps.forEach((s, i) => (s.needs ?? []).forEach((n, j) => {
      if (!members.has(n)) issues.push({ path: `${path}.steps[${i}].needs[${j}]`, message: `'${n}' is not a step of graph '${step.id}' (${[...members.keys()].join(', ')})` });
    }));
    for (const cycle of graphCycles(step.steps)) {
      const at = members.get(cycle[0])!;
      issues.push({ path: `${path}.steps[${at}].needs`, message: `cycle in graph '${step.id}': ${[...cycle, cycle[0]].join(' needs ')}` });
    }
  }
  return issues;
}

/** The cycles of a graph's needs, each once (as found by a depth-first search), as lists of ids. */
function graphCycles(steps: Step[]): string[][] {
  const needs = new Map(steps.map((s) => [s.id, (s.needs ?? []).filter((n) => steps.some((o) => o.id === n))]));
  const state = new Map<string, 'open' | 'closed'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const visit = (id: string) => {
    state.set(id, 'open');
    stack.push(id);
    for (const n of needs.get(id) ?? []) {
      if (state.get(n) === 'open') cycles.push(stack.slice(stack.indexOf(n)));
      else if (!state.has(n)) visit(n);
    }
    stack.pop();
    state.set(id, 'closed');
  };
  for (const s of steps) if (!state.has(s.id)) visit(s.id);
  return cycles;
}

/** A sleep has exactly one of durationMs and until; a literal until is a time. */
function checkSleeps(def: Definition): Issue[] {
  const issues: Issue[] = [];
  for (const { step: s, path } of walkSteps(def.steps)) {
    if (s.type !== 'sleep') continue;
    if (s.durationMs === undefined && s.until === undefined) issues.push({ path: `${path}.durationMs`, message: 'a sleep needs durationMs (milliseconds) or until (a time)' });
    else if (s.durationMs !== undefined && s.until !== undefined) issues.push({ path: `${path}.until`, message: 'give either durationMs or until, not both' });
    else if (s.until !== undefined && !s.until.includes('{{') && parseIsoTime(s.until) === undefined) {
      issues.push({ path: `${path}.until`, message: `'${s.until}' is not ${ISO_TIME_HINT}, nor a {{…}} template` });
    }
  }
  return issues;
}

function checkSignals(def: Definition): Issue[] {
  const seen = new Map<string, string>();
  const issues: Issue[] = [];
  for (const { step: s, path } of walkSteps(def.steps)) {
    if (s.type !== 'signal') continue;
    const name = s.name ?? s.id;
    const other = seen.get(name);
    if (other) issues.push({ path: `${path}.name`, message: `signal '${name}' is already awaited by step '${other}'` });
    seen.set(name, s.id);
  }
  return issues;
}

function unknownStepType(type: unknown): string {
  const guess = typeof type === 'string' ? closest(type, STEP_TYPES) : undefined;
  return `unknown step type '${String(type)}'${guess ? `: did you mean '${guess}'?` : ''} (one of ${STEP_TYPES.join(', ')})`;
}

/**
 * The definition as far as it is well shaped: each top-level step that parses, and a stand-in
 * (same id) for each that does not, so the references of the good ones can be checked.
 */
function wellShapedPart(doc: unknown): Definition | undefined {
  const raw = doc as { steps?: unknown; parallel?: unknown } | null;
  if (!raw || typeof raw !== 'object' || !Array.isArray(raw.steps)) return undefined;
  const steps = raw.steps.map((s, i): Step => {
    const ok = stepSchema.safeParse(s);
    if (ok.success) return ok.data;
    const id = (s as { id?: unknown })?.id;
    return { id: typeof id === 'string' ? id : `(steps[${i}])`, type: 'transform', value: null, onError: 'fail' };
  });
  const parallel = Array.isArray(raw.parallel) && raw.parallel.every((g) => Array.isArray(g) && g.every((id) => typeof id === 'string')) ? (raw.parallel as string[][]) : [];
  return { id: 'partial', steps, parallel } as unknown as Definition;
}

/** A check run on a partial definition must never turn a report into a crash. */
function safely(check: () => Issue[]): Issue[] {
  try {
    return check();
  } catch {
    return [];
  }
}
