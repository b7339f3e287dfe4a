/**
 * Inline map items: a map whose block is pure runs its items in the parent's
 * worker, without child executions. A block is pure when every step of it is
 * a `transform` (possibly with `when` and `onError`) and none has `retry`,
 * `concurrency`, `rateLimit` or `timeoutMs`: evaluating it needs nothing but
 * the item, its index and the values around the map, and it cannot wait.
 * Containers inside the block (even of transforms only) keep child executions.
 *
 * The worker evaluates up to maxConcurrency of the next items and records
 * them, in item order, in the map's StepCompleted (`results`) and StepFailed
 * (`failures`) records: entries without `child`, each with its index and
 * `steps` (the output of every step of the block), several per record. The
 * machine takes such a record only for a pure block, and only when its
 * entries are exactly the next items to start within maxConcurrency: the
 * items start and settle in the one record. It never evaluates anything.
 */
import type { MapStep, Step } from '../definition.js';

const pureStep = (s: Step) => s.type === 'transform' && !s.retry && !s.concurrency && !s.rateLimit && s.timeoutMs === undefined;

const pureCache = new WeakMap<MapStep, boolean>();
/** Whether a map's block is pure (see above): its items may run inline. */
export function isPureBlock(step: MapStep): boolean {
  let pure = pureCache.get(step);
  if (pure === undefined) pureCache.set(step, (pure = step.steps.length > 0 && step.steps.every(pureStep)));
  return pure;
}
