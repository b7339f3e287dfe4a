/**
 * Definition validation: shape (zod) plus the rules zod cannot express —
 * unique ids, parallel groups of consecutive steps, templates that refer to
 * steps that run earlier. Every problem names its path. Pure.
 */
import YAML from 'yaml';
import type { z } from 'zod';
import { DefinitionError } from '../errors.js';
import { definitionSchema, stepSchema, STEP_TYPES, type Definition, type Step } from '../../machines/definition.js';
import { collectTemplates, TEMPLATE_ROOTS, TemplateError } from './templates.js';
import { ISO_TIME_HINT, parseIsoTime } from './sleep.js';
import { limits } from '../limits.js';
import { checkOutbound, secretTemplateProblem } from './outboundRules.js';
import { closest } from '../suggest.js';
import { checkTriggers } from './triggers.js';
import { llmStepIssues } from '../llm/stepRules.js';

/** A problem with a definition; syntax errors also say where in the text (1-based). */
export interface Issue { path: string; message: string; line?: number; column?: number }

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
  return doc.toJS();
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

/**
 * Validate a parsed document; returns the definition with defaults applied.
 * Every problem is reported at once: the rules across fields (ids, groups,
 * templates, ...) also run on the steps that have the right shape when others
 * do not.
 */
export function validateDefinition(doc: unknown, options: ValidateOptions = {}): Definition {
  // First, before any per-step work: a definition past the limit costs nothing to refuse.
  const tooMany = checkStepCount(doc, options.maxSteps ?? limits().maxSteps);
  if (tooMany) throw new DefinitionError([tooMany]);
  const typeIssues = checkStepTypes(doc);
  const parsed = definitionSchema.safeParse(doc);
  if (!parsed.success) {
    // A step of an unknown type has its own message; zod's union error about it would only repeat it.
    const typed = typeIssues.map((i) => i.path.replace(/\.type$/, ''));
    const shapeIssues = zodIssues(parsed.error).filter((i) => !typed.some((t) => i.path === t || i.path.startsWith(`${t}.`) || i.path.startsWith(`${t}[`)));
    const partial = wellShapedPart(doc);
    throw new DefinitionError([...typeIssues, ...shapeIssues, ...(partial ? crossFieldIssues(partial) : [])]);
  }
  const issues = [...typeIssues, ...crossFieldIssues(parsed.data)];
  if (issues.length) throw new DefinitionError(issues);
  return parsed.data;
}

function crossFieldIssues(def: Definition): Issue[] {
  return [
    ...checkIds(def),
    ...checkGroups(def),
    ...checkSleeps(def),
    ...def.steps.flatMap((s, i) => (s.type === 'llm' ? llmStepIssues(s, `steps[${i}]`) : [])),
    ...checkTemplates(def),
    ...checkSignals(def),
    ...checkOutbound(def),
    ...checkTriggers(def),
  ];
}

/**
 * The part of a document the rules across fields can still check when its
 * shape is wrong: its steps that parse, and a stand-in (same id, no fields)
 * for each that does not, so positions and ids stay as written.
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
  return { id: 'partial', steps, parallel } as Definition;
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${String(seg)}` : String(seg);
  return out || '(root)';
}

function zodIssues(error: z.ZodError): Issue[] {
  return error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
}

function checkStepCount(doc: unknown, maxSteps: number): Issue | undefined {
  const steps = (doc as { steps?: unknown })?.steps;
  if (!Array.isArray(steps) || steps.length <= maxSteps) return undefined;
  return {
    path: 'steps',
    message: `${steps.length.toLocaleString('en')} steps is more than the limit of ${maxSteps.toLocaleString('en')} per definition (SMARTSPEC_MAX_STEPS)`,
  };
}

/** An unknown step type gets its own message rather than zod's union error. */
function checkStepTypes(doc: unknown): Issue[] {
  const steps = (doc as { steps?: unknown })?.steps;
  if (!Array.isArray(steps)) return [];
  const issues: Issue[] = [];
  steps.forEach((s, i) => {
    const type = (s as { type?: unknown })?.type;
    if (s && typeof s === 'object' && !(STEP_TYPES as unknown[]).includes(type)) {
      issues.push({
        path: `steps[${i}].type`,
        message: type === undefined ? `missing step type (one of ${STEP_TYPES.join(', ')})` : unknownTypeMessage(type),
      });
    }
  });
  return issues;
}

function unknownTypeMessage(type: unknown): string {
  const guess = typeof type === 'string' ? closest(type, STEP_TYPES) : undefined;
  return `unknown step type '${String(type)}'${guess ? `: did you mean '${guess}'?` : ''} (one of ${STEP_TYPES.join(', ')})`;
}

function checkIds(def: Definition): Issue[] {
  const seen = new Map<string, number>();
  const issues: Issue[] = [];
  def.steps.forEach((s, i) => {
    const first = seen.get(s.id);
    if (first !== undefined) issues.push({ path: `steps[${i}].id`, message: `duplicate step id '${s.id}' (also steps[${first}])` });
    else seen.set(s.id, i);
  });
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
      if (pos === undefined) return issues.push({ path, message: `unknown step id '${id}'` });
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

/** The stage (position in the run order) of each step: group members share one. */
export function stageIndex(def: Definition): Map<string, number> {
  const groupOf = new Map<string, number>();
  def.parallel.forEach((g, gi) => g.forEach((id) => groupOf.set(id, gi)));
  const stage = new Map<string, number>();
  let current = -1;
  let lastGroup: number | undefined;
  for (const s of def.steps) {
    const g = groupOf.get(s.id);
    if (g === undefined || g !== lastGroup) current++;
    lastGroup = g;
    stage.set(s.id, current);
  }
  return stage;
}

/** The fields of a step that may hold templates. */
function templatedFields(step: Step): [string, unknown][] {
  const fields: [string, unknown][] = [];
  if (step.when !== undefined) fields.push(['when', step.when]);
  switch (step.type) {
    case 'transform': fields.push(['value', step.value]); break;
    case 'http': fields.push(['request', step.request]); break;
    case 'llm': fields.push(['prompt', step.prompt]); if (step.system) fields.push(['system', step.system]); fields.push(['model', step.model]); break;
    case 'fail': fields.push(['message', step.message]); break;
    case 'sleep':
      if (typeof step.durationMs === 'string') fields.push(['durationMs', step.durationMs]);
      if (step.until !== undefined) fields.push(['until', step.until]);
      break;
    default: break;
  }
  return fields;
}

function checkTemplates(def: Definition): Issue[] {
  const stage = stageIndex(def);
  const issues: Issue[] = [];
  def.steps.forEach((step, i) => {
    for (const [field, value] of templatedFields(step)) {
      let refs;
      try {
        refs = collectTemplates(value, field);
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err;
        issues.push({ path: `steps[${i}].${(err.details?.at as string | undefined) || field}`, message: err.message });
        continue;
      }
      for (const ref of refs) {
        const path = `steps[${i}].${ref.at}`;
        const [root, id, out] = ref.path;
        if (!(TEMPLATE_ROOTS as readonly string[]).includes(root)) {
          issues.push({ path, message: `${ref.raw}: unknown root '${root}' (use ${TEMPLATE_ROOTS.join(', ')})` });
        } else if (root === 'steps') {
          if (id === undefined || !stage.has(id)) issues.push({ path, message: `${ref.raw} refers to unknown step '${id ?? ''}'` });
          else if (stage.get(id)! >= stage.get(step.id)!) issues.push({ path, message: `${ref.raw} refers to step '${id}', which does not run before '${step.id}'` });
          else if (out !== 'output') issues.push({ path, message: `${ref.raw}: write steps.${id}.output…` });
        } else if (root === 'secrets') {
          const problem = secretTemplateProblem(ref, field);
          if (problem) issues.push({ path, message: problem });
        }
      }
    }
  });
  return issues;
}

/** A sleep has exactly one of durationMs and until; a literal until is a time. */
function checkSleeps(def: Definition): Issue[] {
  const issues: Issue[] = [];
  def.steps.forEach((s, i) => {
    if (s.type !== 'sleep') return;
    if (s.durationMs === undefined && s.until === undefined) issues.push({ path: `steps[${i}].durationMs`, message: 'a sleep needs durationMs (milliseconds) or until (a time)' });
    else if (s.durationMs !== undefined && s.until !== undefined) issues.push({ path: `steps[${i}].until`, message: 'give either durationMs or until, not both' });
    else if (s.until !== undefined && !s.until.includes('{{') && parseIsoTime(s.until) === undefined) {
      issues.push({ path: `steps[${i}].until`, message: `'${s.until}' is not ${ISO_TIME_HINT}, nor a {{…}} template` });
    }
  });
  return issues;
}

function checkSignals(def: Definition): Issue[] {
  const seen = new Map<string, string>();
  const issues: Issue[] = [];
  def.steps.forEach((s, i) => {
    if (s.type !== 'signal') return;
    const name = s.name ?? s.id;
    const other = seen.get(name);
    if (other) issues.push({ path: `steps[${i}].name`, message: `signal '${name}' is already awaited by step '${other}'` });
    seen.set(name, s.id);
  });
  return issues;
}
