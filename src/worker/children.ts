/**
 * Child executions: what a `workflow` step or a map item starts, and how a
 * child's end becomes its parent's record. A child is a whole execution (its
 * own actor, log subject and host): a map of 10,000 items costs its parent a
 * few counters and the outputs it assembles, and every item is recovered from
 * its own log like any execution. The parent's record of the child's start
 * names it before it is started, so a redelivered command or a recovery starts
 * that same child again (refused: it exists), never a second one.
 */
import { createHash } from 'node:crypto';
import type { Budget, Definition, MapStep } from '../../machines/definition.js';
import type { ErrorInfo, OuterScope, ParentLink, Usage, WorkflowEvent } from '../../machines/events.js';
import { walkSteps } from '../../machines/blocks.js';
import { expressionBody } from '../definition/expressions.js';
import { templatedFields } from '../definition/references.js';
import { rootsReadBy } from '../definition/resolve.js';
import { stepsReferencedBy } from '../definition/stepRefs.js';

export interface ChildStart {
  childId: string;
  parent: ParentLink;
  definition: Definition;
  input: unknown;
  budget?: Budget;
  outer?: OuterScope;
  /** A child to resume from a step rather than start (src/worker/resumeItems.ts), while its last record is `after`. */
  resume?: { fromStep: string; after: number };
}

/** What a runner needs from its engine to run child executions. */
export interface ChildHost {
  /**
   * The registered definition a `workflow` step runs (its tenant is the parent's). `starting`: the
   * child is about to be started, so a disabled workflow is refused; a child already started runs on.
   */
  resolve(parentId: string, workflowId: string, version: number | undefined, starting: boolean): Promise<Definition>;
  /** Start the child unless it exists; one that has ended reports its end to the parent again. */
  ensure(start: ChildStart): Promise<void>;
  /** Cancel a child the parent no longer waits for (the parent was cancelled or failed). */
  cancel(childId: string, reason: string): Promise<void>;
}

/**
 * A child's id: readable (the parent's step and item) and unique per start, derived from the parent's
 * id and its log position when the start is decided, so the parent's log determines it.
 */
export function childIdFor(parentId: string, stepId: string, seq: number, index?: number): string {
  const hash = createHash('sha256').update(`${parentId}\n${stepId}\n${index ?? ''}\n${seq}`).digest('hex').slice(0, 20);
  return `${hash}-${stepId.slice(0, 80)}${index !== undefined ? `-${index}` : ''}`;
}

/** The definition a map item's child runs: the map's block, inline. */
const blockDefinitions = new WeakMap<MapStep, Definition>();
export function blockDefinition(parent: Definition, map: MapStep): Definition {
  let def = blockDefinitions.get(map);
  if (!def) blockDefinitions.set(map, (def = { id: `${parent.id}-${map.id}`.slice(0, 120), steps: map.steps, parallel: [] }));
  return def;
}

/** How a child ended, as the record its parent's step takes: StepCompleted with its output and usage, or StepFailed naming it. */
export function parentEvent(link: ParentLink, childId: string, end: WorkflowEvent, usage: Usage): WorkflowEvent | undefined {
  const at = { stepId: link.stepId, attempt: link.attempt, ...(link.index !== undefined ? { index: link.index } : {}), child: childId };
  const what = link.index !== undefined ? `item ${link.index} of map '${link.stepId}'` : `step '${link.stepId}'`;
  switch (end.type) {
    case 'ExecutionCompleted':
      return { type: 'StepCompleted', ...at, output: end.output, ...(usage.totalTokens > 0 ? { usage } : {}) };
    case 'ExecutionFailed': {
      // Out of tokens: the parent's budget is what is spent (a resume with a higher one continues), so it says so.
      const code = end.error.code === 'BUDGET_EXCEEDED' ? 'BUDGET_EXCEEDED' : 'CHILD_FAILED';
      const error: ErrorInfo = { code, message: `child execution '${childId}' of ${what} failed: ${end.error.code}: ${end.error.message}`, retryable: end.error.retryable, details: { childId, error: end.error } };
      return { type: 'StepFailed', ...at, error };
    }
    case 'ExecutionCancelled': {
      const error: ErrorInfo = { code: 'CHILD_CANCELLED', message: `child execution '${childId}' of ${what} was cancelled${end.reason ? `: ${end.reason}` : ''}`, retryable: false, details: { childId } };
      return { type: 'StepFailed', ...at, error };
    }
    default:
      return undefined;
  }
}

/** The steps outside a map whose outputs its block reads (passed to each item's child). */
const outerRefsCache = new WeakMap<MapStep, string[]>();
export function outerRefs(map: MapStep): string[] {
  let ids = outerRefsCache.get(map);
  if (!ids) {
    const inner = new Set([...walkSteps(map.steps)].map((v) => v.step.id));
    const found = new Set<string>();
    for (const { step } of walkSteps(map.steps)) for (const id of stepsReferencedBy(step)) if (!inner.has(id)) found.add(id);
    for (const id of rootsReadByLoops(map)) if (!inner.has(id)) found.add(id);
    outerRefsCache.set(map, (ids = [...found]));
  }
  return ids;
}

/** Whether a map's block may read `input` (an expression is taken to when it names it anywhere). */
const readsInputCache = new WeakMap<MapStep, boolean>();
export function blockReadsInput(map: MapStep): boolean {
  let reads = readsInputCache.get(map);
  if (reads === undefined) {
    const values = [...walkSteps(map.steps)].flatMap(({ step }) => [...templatedFields(step).map(([, v]) => v), ...(step.type === 'loop' && step.until ? [step.until] : [])]);
    reads = values.some(readsInput);
    readsInputCache.set(map, reads);
  }
  return reads;
}
function readsInput(v: unknown): boolean {
  const body = expressionBody(v);
  if (body !== undefined) return /\binput\b/.test(body);
  if (typeof v === 'string') return rootsReadBy(v).has('input');
  if (Array.isArray(v)) return v.some(readsInput);
  return !!v && typeof v === 'object' && Object.values(v).some(readsInput);
}

/** Steps a loop's `until` inside the block reads (not a templated field of any step). */
function rootsReadByLoops(map: MapStep): string[] {
  const out: string[] = [];
  for (const { step } of walkSteps(map.steps)) if (step.type === 'loop' && step.until) for (const r of rootsReadBy(step.until)) if (r.startsWith('steps.')) out.push(r.slice('steps.'.length));
  return out;
}
