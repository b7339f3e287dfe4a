/**
 * `map`: the block once per item, each item a child execution (its own actor
 * and log). The worker evaluates `items` once and records them in the map's
 * StepStarted (`items`, `count`); it records items' starts (StepStarted with
 * `launch: [{index, child}]`) and results (StepCompleted with `results`,
 * StepFailed with `failures`, each naming index and child), several per
 * record when they come together, so a map costs its parent's log far fewer
 * records than two per item. The machine keeps counters,
 * the ids of the items running (at most maxConcurrency) and the outputs it
 * must assemble, so it decides alone whether another item may start: the
 * bound holds after a crash, as it is folded from the log. A pure block's
 * items run inline instead, without children (mapInline.ts): each such record
 * both starts and settles the next items.
 *
 * Failures: up to `toleratedFailures` an item's output is `{error}`. Past it,
 * no new item starts; the items running finish and are recorded (a resume
 * keeps them), then the map fails. Output: each item's output, in item order.
 */
import { assign } from 'xstate';
import type { MapStep } from '../definition.js';
import type { ErrorInfo, ItemsAgain, StepCompleted, StepFailed, StepStarted, Usage } from '../events.js';
import { emptyStepMap, stepMapDelete, stepMapGet, stepMapSet } from '../stepMap.js';
import { isStepEvent, type Args } from './common.js';
import { isPureBlock } from './mapInline.js';

export interface MapProgress {
  count: number;
  /** The items as recorded: the array, or a payload ref to it. */
  items: unknown;
  /** Items below `next` have been started (those in `retry` start again first). */
  next: number;
  /** Items to start again before `next` (a resume re-runs the failed ones). */
  retry: number[];
  /** The items running, by index: their child execution ids. */
  running: Record<string, string>;
  /** Under a token budget: the tokens each running item was given, by index (src/worker/childBudgets.ts). */
  held?: Record<string, number>;
  /** Resumed from a step inside the block: the items whose next start resumes their child from it. */
  again?: { fromStep: string; children: NonNullable<ItemsAgain['children']> };
  /** Items that failed (their output is `{error}`). */
  failed: number[];
  /** Items with a result. */
  settled: number;
  outputs: unknown[];
  /** The first failure past `toleratedFailures`: the map's error once the running items finish. */
  error?: ErrorInfo;
}

export const progressOf = (ctx: Args['context'], id: string): MapProgress | undefined => stepMapGet(ctx.maps ?? emptyStepMap<MapProgress>(), id);

/** The item to start next, if any. */
export const nextItem = (p: MapProgress): number | undefined => p.retry[0] ?? (p.next < p.count ? p.next : undefined);
/** The next `n` items to start, in order: those to run again, then the next ones. */
export function nextItems(p: MapProgress, n: number): number[] {
  const out = p.retry.slice(0, n);
  for (let i = p.next; out.length < n && i < p.count; i++) out.push(i);
  return out;
}
export const runningCount = (p: MapProgress) => Object.keys(p.running).length;
const overThreshold = (p: MapProgress, step: MapStep) => p.failed.length > step.toleratedFailures;
export const canLaunch = (p: MapProgress, step: MapStep) => !overThreshold(p, step) && nextItem(p) !== undefined && runningCount(p) < step.maxConcurrency;
const allDone = (p: MapProgress) => runningCount(p) === 0 && p.settled === p.count;
const givenUp = (p: MapProgress, step: MapStep) => runningCount(p) === 0 && overThreshold(p, step);

/** The map's state for its progress: what resume rebuilds a map under way at. */
export function mapPhase(p: MapProgress, step: MapStep): 'launching' | 'waiting' {
  return canLaunch(p, step) ? 'launching' : 'waiting';
}

/** Progress to continue from after a resume (not a recovery, which continues as it was): failed items and those cut off run again. */
export function resumedProgress(p: MapProgress): MapProgress {
  const again = [...p.retry, ...p.failed, ...Object.keys(p.running).map(Number)].sort((a, b) => a - b);
  const outputs = p.outputs.slice();
  for (const i of p.failed) outputs[i] = null;
  return { ...p, retry: [...new Set(again)], running: {}, held: undefined, failed: [], settled: p.settled - p.failed.length, outputs, error: undefined };
}

const addUsage = (a: Usage, b?: Usage): Usage =>
  b ? { promptTokens: a.promptTokens + b.promptTokens, completionTokens: a.completionTokens + b.completionTokens, totalTokens: a.totalTokens + b.totalTokens } : a;

export function mapNode(step: MapStep) {
  const id = step.id;
  const isStep = isStepEvent(id);
  const get = (ctx: Args['context']) => progressOf(ctx, id)!;
  const put = (ctx: Args['context'], p: MapProgress) => ({ maps: stepMapSet(ctx.maps ?? emptyStepMap<MapProgress>(), id, p) });
  type Item = { index: number; child?: string; maxTokens?: number };
  const batchOf = (a: Args): Item[] | undefined => {
    const e = a.event as Partial<Pick<StepStarted, 'launch'> & Pick<StepCompleted, 'results'> & Pick<StepFailed, 'failures'>>;
    return e.launch ?? e.results ?? e.failures;
  };
  const isItem = (a: Args) => isStep(a) && batchOf(a) !== undefined;
  // Results and failures: every item named runs, with the child named (a repeated report is refused).
  const ofRunningItems = (a: Args) => {
    if (!isItem(a) || a.event.type === 'StepStarted') return false;
    const { running } = get(a.context);
    const batch = batchOf(a)!;
    return batch.length > 0 && batch.every((r) => r.child !== undefined && running[String(r.index)] === r.child) && new Set(batch.map((r) => r.index)).size === batch.length;
  };
  // Inline results and failures (no child): a pure block's next items in order, within maxConcurrency, started and settled at once.
  const isInlineBatch = (a: Args) => {
    if (!isItem(a) || a.event.type === 'StepStarted' || !isPureBlock(step)) return false;
    const p = get(a.context);
    const batch = batchOf(a)!;
    const expected = nextItems(p, batch.length);
    return batch.length > 0 && canLaunch(p, step) && runningCount(p) + batch.length <= step.maxConcurrency && batch.every((r, i) => r.child === undefined && r.index === expected[i]);
  };
  // Starts: exactly the next items in order, within maxConcurrency, and none past the failures tolerated.
  const isNextLaunch = (a: Args) => {
    if (!isItem(a) || a.event.type !== 'StepStarted') return false;
    const p = get(a.context);
    const launch = (a.event as StepStarted).launch!;
    const expected = nextItems(p, launch.length);
    // An item resumed from a step inside the block starts its own child again, not a new one.
    const childOk = (l: { index: number; child: string }) => (p.again?.children[String(l.index)]?.child ?? l.child) === l.child;
    return canLaunch(p, step) && launch.length > 0 && runningCount(p) + launch.length <= step.maxConcurrency && launch.every((l, i) => l.index === expected[i] && childOk(l));
  };

  const begin = assign(({ context, event }: Args) => {
    const e = event as StepStarted;
    const again = context.itemsAgain?.stepId === id ? { again: { fromStep: context.itemsAgain.fromStep, children: context.itemsAgain.children ?? {} } } : {};
    const p: MapProgress = { count: e.count!, items: e.items, next: 0, retry: [], running: {}, failed: [], settled: 0, outputs: new Array(e.count!).fill(null), ...again };
    return { ...put(context, p), attempts: stepMapSet(context.attempts, id, e.attempt), ...(context.itemsAgain?.stepId === id ? { itemsAgain: undefined } : {}) };
  });
  const launch = assign(({ context, event }: Args) => {
    const p = get(context);
    const running = Object.assign({}, p.running);
    let held = p.held && Object.assign({}, p.held);
    let { retry, next } = p;
    for (const l of batchOf({ context, event })!) {
      if (l.child !== undefined) running[String(l.index)] = l.child;
      if (l.maxTokens !== undefined) (held ??= {})[String(l.index)] = l.maxTokens;
      if (retry[0] === l.index) retry = retry.slice(1);
      else next++;
    }
    return put(context, { ...p, running, retry, next, ...(held ? { held } : {}) });
  });
  const settle = assign(({ context, event }: Args) => {
    const p = get(context);
    const running = Object.assign({}, p.running);
    const held = p.held && Object.assign({}, p.held);
    // An item resumed from a step reports once; a later run of it (a resume of a failed item) is a child of its own.
    const again = p.again && { ...p.again, children: Object.assign({}, p.again.children) };
    const outputs = p.outputs.slice();
    let { failed, error } = p;
    let usage = context.usage;
    const e = event as Partial<Pick<StepCompleted, 'results'> & Pick<StepFailed, 'failures'>>;
    for (const r of e.results ?? []) {
      delete running[String(r.index)];
      if (held) delete held[String(r.index)];
      if (again) delete again.children[String(r.index)];
      outputs[r.index] = r.output;
      usage = addUsage(usage, r.usage);
    }
    for (const f of e.failures ?? []) {
      delete running[String(f.index)];
      if (held) delete held[String(f.index)];
      if (again) delete again.children[String(f.index)];
      outputs[f.index] = { error: f.error };
      failed = [...failed, f.index];
      if (!error && failed.length > step.toleratedFailures) error = f.error;
    }
    const settled = p.settled + (e.results?.length ?? 0) + (e.failures?.length ?? 0);
    return { ...put(context, { ...p, running, outputs, failed, settled, ...(held ? { held } : {}), ...(again ? { again } : {}), ...(error ? { error } : {}) }), usage };
  });
  const fail = assign(({ context }: Args) => ({ errors: stepMapSet(context.errors, id, get(context).error!) }));
  const continueWithError = assign(({ context }: Args) => ({ outputs: stepMapSet(context.outputs, id, { error: get(context).error }), errors: stepMapSet(context.errors, id, get(context).error!) }));
  const close = assign(({ context }: Args) => ({ outputs: stepMapSet(context.outputs, id, get(context).outputs) }));
  const finish = assign(({ context, event }: Args) => ({ outputs: stepMapSet(context.outputs, id, (event as StepCompleted).output), maps: stepMapDelete(context.maps ?? emptyStepMap<MapProgress>(), id) }));
  // A failure of the map itself (its items could not be read, a child could not start).
  const ownFailure = assign(({ context, event }: Args) => ({ errors: stepMapSet(context.errors, id, (event as StepFailed).error) }));
  const ownContinue = assign(({ context, event }: Args) => ({ outputs: stepMapSet(context.outputs, id, { error: (event as StepFailed).error }), errors: stepMapSet(context.errors, id, (event as StepFailed).error) }));
  const onOwnFailure = [
    { guard: (a: Args) => isStep(a) && !isItem(a) && step.onError === 'continue', target: '.done', actions: ownContinue },
    { guard: (a: Args) => isStep(a) && !isItem(a), target: '.failed', actions: ownFailure },
  ];

  const ends = [
    { guard: ({ context }: Args) => givenUp(get(context), step) && step.onError === 'continue', target: 'done', actions: continueWithError },
    { guard: ({ context }: Args) => givenUp(get(context), step), target: 'failed', actions: fail },
    { guard: ({ context }: Args) => allDone(get(context)), target: 'closing', actions: close },
  ];
  const items = {
    StepStarted: { guard: isNextLaunch, actions: launch },
    StepCompleted: [{ guard: isInlineBatch, actions: [launch, settle] }, { guard: ofRunningItems, actions: settle }],
    StepFailed: [{ guard: isInlineBatch, actions: [launch, settle] }, { guard: ofRunningItems, actions: settle }],
  };
  return {
    initial: 'pending',
    on: { StepFailed: onOwnFailure },
    states: {
      pending: {
        on: {
          StepStarted: { guard: (a: Args) => isStep(a) && (a.event as StepStarted).count !== undefined && !isItem(a), target: 'launching', actions: begin },
          StepCompleted: { guard: (a: Args) => isStep(a) && (a.event as StepCompleted).skipped === true, target: 'done', actions: assign(({ context }: Args) => ({ outputs: stepMapSet(context.outputs, id, null) })) },
        },
      },
      launching: { always: [...ends, { guard: ({ context }: Args) => !canLaunch(get(context), step), target: 'waiting' }], on: items },
      waiting: { always: [...ends, { guard: ({ context }: Args) => canLaunch(get(context), step), target: 'launching' }], on: items },
      // The record carries the output (by reference when large): later steps read that, and the progress goes.
      closing: { on: { StepCompleted: { guard: (a: Args) => isStep(a) && !isItem(a), target: 'done', actions: finish } } },
      done: { type: 'final' as const },
      failed: {},
    },
  };
}
