/**
 * `map`: the block once per item, each item a child execution (its own actor
 * and log). The worker evaluates `items` once and records them in the map's
 * StepStarted (`items`, `count`); it records each item's start (StepStarted
 * with `index` and `child`) and result (StepCompleted / StepFailed with
 * `index` and `child`, sent by the child's end). The machine keeps counters,
 * the ids of the items running (at most maxConcurrency) and the outputs it
 * must assemble, so it decides alone whether another item may start: the
 * bound holds after a crash, as it is folded from the log.
 *
 * Failures: up to `toleratedFailures` an item's output is `{error}`. Past it,
 * no new item starts; the items running finish and are recorded (a resume
 * keeps them), then the map fails. Output: each item's output, in item order.
 */
import { assign } from 'xstate';
import type { MapStep } from '../definition.js';
import type { ErrorInfo, StepCompleted, StepFailed, StepStarted, Usage } from '../events.js';
import { emptyStepMap, stepMapDelete, stepMapGet, stepMapSet } from '../stepMap.js';
import { isStepEvent, type Args } from './common.js';

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
export const runningCount = (p: MapProgress) => Object.keys(p.running).length;
const overThreshold = (p: MapProgress, step: MapStep) => p.failed.length > step.toleratedFailures;
export const canLaunch = (p: MapProgress, step: MapStep) => !overThreshold(p, step) && nextItem(p) !== undefined && runningCount(p) < step.maxConcurrency;
const allDone = (p: MapProgress) => runningCount(p) === 0 && p.settled === p.count;
const givenUp = (p: MapProgress, step: MapStep) => runningCount(p) === 0 && overThreshold(p, step);

/** The map's state for its progress: what resume rebuilds a map under way at. */
export function mapPhase(p: MapProgress, step: MapStep): 'launching' | 'waiting' {
  return canLaunch(p, step) ? 'launching' : 'waiting';
}

/** Progress to continue from after a resume: failed items and those cut off run again; with `recovery` the running ones keep running. */
export function resumedProgress(p: MapProgress, recovery: boolean): MapProgress {
  const again = [...p.retry, ...p.failed, ...(recovery ? [] : Object.keys(p.running).map(Number))].sort((a, b) => a - b);
  const outputs = p.outputs.slice();
  for (const i of p.failed) outputs[i] = null;
  return { ...p, retry: [...new Set(again)], running: recovery ? p.running : {}, failed: [], settled: p.settled - p.failed.length, outputs, error: undefined };
}

const addUsage = (a: Usage, b?: Usage): Usage =>
  b ? { promptTokens: a.promptTokens + b.promptTokens, completionTokens: a.completionTokens + b.completionTokens, totalTokens: a.totalTokens + b.totalTokens } : a;

export function mapNode(step: MapStep) {
  const id = step.id;
  const isStep = isStepEvent(id);
  const get = (ctx: Args['context']) => progressOf(ctx, id)!;
  const put = (ctx: Args['context'], p: MapProgress) => ({ maps: stepMapSet(ctx.maps ?? emptyStepMap<MapProgress>(), id, p) });
  const isItem = (a: Args) => isStep(a) && (a.event as { index?: number }).index !== undefined;
  const ofRunningItem = (a: Args) => isItem(a) && get(a.context).running[String((a.event as StepCompleted).index)] === (a.event as StepCompleted).child;

  const begin = assign(({ context, event }: Args) => {
    const e = event as StepStarted;
    const p: MapProgress = { count: e.count!, items: e.items, next: 0, retry: [], running: {}, failed: [], settled: 0, outputs: new Array(e.count!).fill(null) };
    return { ...put(context, p), attempts: stepMapSet(context.attempts, id, e.attempt) };
  });
  const launch = assign(({ context, event }: Args) => {
    const e = event as StepStarted;
    const p = get(context);
    const running = Object.assign({}, p.running);
    running[String(e.index)] = e.child!;
    const fromRetry = p.retry[0] === e.index;
    return put(context, { ...p, running, retry: fromRetry ? p.retry.slice(1) : p.retry, next: fromRetry ? p.next : p.next + 1 });
  });
  const settle = (failed: boolean) => assign(({ context, event }: Args) => {
    const e = event as StepCompleted | StepFailed;
    const p = get(context);
    const running = Object.assign({}, p.running);
    delete running[String(e.index)];
    const outputs = p.outputs.slice();
    outputs[e.index!] = failed ? { error: (e as StepFailed).error } : (e as StepCompleted).output;
    const next: MapProgress = { ...p, running, outputs, settled: p.settled + 1, failed: failed ? [...p.failed, e.index!] : p.failed };
    if (failed && !p.error && next.failed.length > step.toleratedFailures) next.error = (e as StepFailed).error;
    return { ...put(context, next), usage: failed ? context.usage : addUsage(context.usage, (e as StepCompleted).usage) };
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
    StepStarted: { guard: (a: Args) => isItem(a) && nextItem(get(a.context)) === (a.event as StepStarted).index && canLaunch(get(a.context), step), actions: launch },
    StepCompleted: { guard: ofRunningItem, actions: settle(false) },
    StepFailed: { guard: ofRunningItem, actions: settle(true) },
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
