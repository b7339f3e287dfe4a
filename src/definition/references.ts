/**
 * What a template or expression may read (ARCHITECTURE.md, "References"): a
 * step certain to have completed before it — earlier in its block, earlier in
 * an enclosing block, inside a loop earlier in the same iteration, in a graph
 * a step it needs (directly or not); `until` may read its loop's own steps.
 * Outside a container its inner steps are reached through the container's
 * output. `item`/`index` only inside a map, `iteration` only inside a loop.
 * Pure.
 */
import { blocksOf, stepIndex } from '../../machines/blocks.js';
import type { Definition, Step } from '../../machines/definition.js';
import { secretTemplateProblem } from './outboundRules.js';
import { collectTemplates, TEMPLATE_ROOTS, TemplateError } from './templates.js';
import { expressionBody, expressionStepRefs, isPartialExpression, parseProblem } from './expressions.js';

/** A problem with a definition; syntax errors also say where in the text (1-based). */
export interface Issue { path: string; message: string; line?: number; column?: number }

type ContextRoot = 'item' | 'index' | 'iteration';
interface Scope {
  /** Ids of the steps certain to have completed. */
  visible: ReadonlySet<string>;
  roots: ReadonlySet<ContextRoot>;
}

const ALL_ROOTS = [...TEMPLATE_ROOTS, 'item', 'index', 'iteration'] as const;

/** The fields of a step that may hold templates or expressions, with their paths relative to the step. */
export function templatedFields(step: Step): [string, unknown][] {
  const fields: [string, unknown][] = [];
  if (step.when !== undefined) fields.push(['when', step.when]);
  // Concurrency and rate keys are read when the step is admitted: they may use what `when` may.
  step.concurrency?.forEach((c, i) => fields.push([`concurrency[${i}].key`, c.key]));
  if (step.rateLimit) fields.push(['rateLimit.key', step.rateLimit.key]);
  switch (step.type) {
    case 'transform': fields.push(['value', step.value]); break;
    case 'http': fields.push(['request', step.request]); break;
    case 'llm': fields.push(['prompt', step.prompt]); if (step.system) fields.push(['system', step.system]); fields.push(['model', step.model]); break;
    case 'fail': fields.push(['message', step.message]); break;
    case 'sleep':
      if (typeof step.durationMs === 'string') fields.push(['durationMs', step.durationMs]);
      if (step.until !== undefined) fields.push(['until', step.until]);
      break;
    case 'switch': step.cases.forEach((c, i) => fields.push([`cases[${i}].when`, c.when])); break;
    case 'map': fields.push(['items', step.items]); break;
    case 'waitForEvent': if (step.after !== undefined) fields.push(['after', step.after]); break;
    case 'workflow': if (step.input !== undefined) fields.push(['input', step.input]); break;
    default: break;
  }
  return fields;
}

/** The stage (position in the run order) of each top-level step: members of a parallel group share one. */
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

export function checkReferences(def: Definition): Issue[] {
  const issues: Issue[] = [];
  const known = stepIndex(def);
  const check = (step: Step, path: string, scope: Scope) => {
    for (const [field, value] of templatedFields(step)) checkValue(value, field, `${path}.${field}`, step, scope, known, issues);
    if (step.type === 'loop' && step.until !== undefined) {
      // `until` is read after an iteration: the loop's own steps (of its block) have run.
      const after = new Set([...scope.visible, ...step.steps.map((s) => s.id)]);
      checkValue(step.until, 'until', `${path}.until`, step, { visible: after, roots: new Set([...scope.roots, 'iteration']) }, known, issues);
    }
    checkBlocks(step, path, scope);
  };
  const checkSequence = (steps: Step[], base: string, outer: Scope) => {
    const visible = new Set(outer.visible);
    steps.forEach((s, i) => {
      check(s, `${base}[${i}]`, { visible: new Set(visible), roots: outer.roots });
      visible.add(s.id);
    });
  };
  const checkBlocks = (step: Step, path: string, scope: Scope) => {
    if (step.type === 'graph') {
      const needs = transitiveNeeds(step.steps);
      step.steps.forEach((s, i) => check(s, `${path}.steps[${i}]`, { visible: new Set([...scope.visible, ...(needs.get(s.id) ?? [])]), roots: scope.roots }));
      return;
    }
    const roots = new Set(scope.roots);
    if (step.type === 'map') { roots.add('item'); roots.add('index'); }
    if (step.type === 'loop') roots.add('iteration');
    for (const b of blocksOf(step)) checkSequence(b.steps, `${path}.${b.path}`, { visible: scope.visible, roots });
  };

  // The top level: stages, so members of a parallel group do not see each other.
  const stage = stageIndex(def);
  def.steps.forEach((s, i) => {
    const visible = new Set(def.steps.filter((o) => stage.get(o.id)! < stage.get(s.id)!).map((o) => o.id));
    check(s, `steps[${i}]`, { visible, roots: new Set() });
  });
  return issues;
}

/** For each step of a graph: every step it waits for, directly or through others (assumes no cycle). */
function transitiveNeeds(steps: Step[]): Map<string, Set<string>> {
  const direct = new Map(steps.map((s) => [s.id, s.needs ?? []]));
  const out = new Map<string, Set<string>>();
  const resolve = (id: string, seen = new Set<string>()): Set<string> => {
    const done = out.get(id);
    if (done) return done;
    const all = new Set<string>();
    for (const n of direct.get(id) ?? []) {
      if (seen.has(n) || !direct.has(n)) continue; // cycles and strangers are reported elsewhere
      all.add(n);
      for (const m of resolve(n, new Set([...seen, id]))) all.add(m);
    }
    out.set(id, all);
    return all;
  };
  for (const s of steps) resolve(s.id);
  return out;
}

function checkValue(value: unknown, field: string, path: string, step: Step, scope: Scope, known: Map<string, unknown>, issues: Issue[]): void {
  if (typeof value === 'string') {
    const body = expressionBody(value);
    if (body !== undefined) return checkExpression(body, path, step, scope, known, issues);
    if (isPartialExpression(value)) {
      issues.push({ path, message: `an expression must be the whole string ('{% … %}'): '${value.length > 60 ? `${value.slice(0, 60)}…` : value}' would stay text` });
      return;
    }
  } else if (Array.isArray(value)) {
    // `value.1`, as collectTemplates names places inside a value
    value.forEach((v, i) => checkValue(v, field, `${path}.${i}`, step, scope, known, issues));
    return;
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) checkValue(v, field, `${path}.${k}`, step, scope, known, issues);
    return;
  } else {
    return;
  }
  let refs;
  try {
    refs = collectTemplates(value, '');
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    issues.push({ path, message: err.message });
    return;
  }
  for (const ref of refs) {
    const [root, id, out] = ref.path;
    if (!(ALL_ROOTS as readonly string[]).includes(root)) {
      issues.push({ path, message: `${ref.raw}: unknown root '${root}' (use ${[...TEMPLATE_ROOTS, ...scope.roots].join(', ')})` });
    } else if (root === 'item' || root === 'index' || root === 'iteration') {
      if (!scope.roots.has(root)) issues.push({ path, message: `${ref.raw}: '${root}' exists only inside ${root === 'iteration' ? 'a loop' : 'a map'}` });
    } else if (root === 'steps') {
      const problem = stepRefProblem(ref.raw, id, step, scope, known);
      if (problem) issues.push({ path, message: problem });
      else if (out !== 'output') issues.push({ path, message: `${ref.raw}: write steps.${id}.output…` });
    } else if (root === 'secrets') {
      const problem = secretTemplateProblem(ref, field);
      if (problem) issues.push({ path, message: problem });
    }
  }
}

function checkExpression(body: string, path: string, step: Step, scope: Scope, known: Map<string, unknown>, issues: Issue[]): void {
  const parse = parseProblem(body);
  if (parse) {
    issues.push({ path, message: `{% … %} ${parse.message}` });
    return;
  }
  const refs = expressionStepRefs(body);
  if (refs.dynamic) issues.push({ path, message: `an expression must name each step it reads (steps.<id>…), so that it can be checked to have run` });
  for (const id of refs.ids) {
    const problem = stepRefProblem(`steps.${id}`, id, step, scope, known);
    if (problem) issues.push({ path, message: problem });
  }
}

function stepRefProblem(raw: string, id: string | undefined, step: Step, scope: Scope, known: Map<string, unknown>): string | undefined {
  if (id === undefined || !known.has(id)) return `${raw} refers to unknown step '${id ?? ''}'`;
  if (!scope.visible.has(id)) return `${raw} refers to step '${id}', which does not run before '${step.id}' (or is not certain to have run by then)`;
  return undefined;
}
