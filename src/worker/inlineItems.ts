/**
 * Map items run inline (machines/containers/mapInline.ts): a pure block's
 * steps are evaluated for each item in the worker's own process, as it
 * evaluates any transform (templates and expressions, src/definition/resolve.ts),
 * and what they gave becomes the item's entry in the map's records. The
 * machine only reads those entries: replay and resume never evaluate again.
 */
import type { MapStep, Step } from '../../machines/definition.js';
import type { ErrorInfo, StepCompleted, StepFailed } from '../../machines/events.js';
import { isPureBlock } from '../../machines/containers/mapInline.js';
import { evaluateCondition, resolveValue, rootsReadBy, type ResolveScope } from '../definition/resolve.js';
import { toErrorRecord } from '../errors.js';

/** One item's entry: its index, every step's output (as recorded) and its output, or the error that ended it. */
export type InlineEntry =
  | { index: number; output: unknown; steps: Record<string, unknown> }
  | { index: number; error: ErrorInfo; steps: Record<string, unknown> };

/** Records larger than this take the next entries in a record of their own (NATS's max_payload is 1 MiB by default). */
const MAX_RECORD_BYTES = 256 * 1024;

const readsSecrets = (s: Step) => {
  try {
    return s.type === 'transform' && rootsReadBy(s.value).has('secrets');
  } catch {
    return true; // a malformed template: the child path reports it as it always has
  }
};
const inlineCache = new WeakMap<MapStep, boolean>();
/** Whether this worker runs the map's items inline: a pure block that reads no secret (secrets stay in steps that redact them). */
export function runsInline(map: MapStep): boolean {
  let inline = inlineCache.get(map);
  if (inline === undefined) inlineCache.set(map, (inline = isPureBlock(map) && !map.steps.some(readsSecrets)));
  return inline;
}

/**
 * One item through the block: each step's `when`, then its value, in order; a step reads the
 * outputs of the steps before it. A failure ends the item unless its step has `onError: "continue"`
 * (its output is then `{error}`, as in a child). `record` prepares an output for the log (by
 * reference when large); later steps read the value itself.
 */
export async function runInlineItem(
  map: MapStep,
  around: ResolveScope,
  item: unknown,
  index: number,
  pathOf: (step: Step) => string,
  record: (value: unknown, step: Step) => Promise<unknown>,
): Promise<InlineEntry> {
  const read: ResolveScope['steps'] = { ...around.steps };
  const steps: Record<string, unknown> = {};
  let output: unknown = null;
  for (const step of map.steps as Extract<Step, { type: 'transform' }>[]) {
    const scope: ResolveScope = { ...around, steps: read, item, index };
    const path = pathOf(step);
    try {
      const runs = step.when === undefined || (await evaluateCondition(step.when, scope, `${path}.when`));
      output = runs ? ((await resolveValue(step.value, scope, `${path}.value`)) ?? null) : null;
      steps[step.id] = await record(output, step);
    } catch (err) {
      const error = toErrorRecord(err);
      if (step.onError !== 'continue') {
        return { index, steps, error: { ...error, message: `item ${index} of map '${map.id}', step '${step.id}': ${error.message}`, details: { ...error.details, item: index, stepId: step.id } } };
      }
      steps[step.id] = output = { error };
    }
    read[step.id] = { output };
  }
  return { index, output: steps[map.steps[map.steps.length - 1].id], steps };
}

/**
 * The records of a batch of entries, in item order: consecutive results in a StepCompleted,
 * consecutive failures in a StepFailed (whose `error` is the first), each record within
 * MAX_RECORD_BYTES. Each takes the map's next items, as the machine requires.
 */
export function inlineRecords(stepId: string, attempt: number, entries: InlineEntry[]): (StepCompleted | StepFailed)[] {
  const out: (StepCompleted | StepFailed)[] = [];
  let run: InlineEntry[] = [];
  let bytes = 0;
  const flush = () => {
    if (run.length === 0) return;
    if ('error' in run[0]) out.push({ type: 'StepFailed', stepId, attempt, error: run[0].error, failures: run as Extract<InlineEntry, { error: ErrorInfo }>[] });
    else out.push({ type: 'StepCompleted', stepId, attempt, output: null, results: run as Extract<InlineEntry, { output: unknown }>[] });
    run = [];
    bytes = 0;
  };
  for (const e of entries) {
    const size = JSON.stringify(e).length;
    if (run.length > 0 && ('error' in e !== 'error' in run[0] || bytes + size > MAX_RECORD_BYTES)) flush();
    run.push(e);
    bytes += size;
  }
  flush();
  return out;
}
