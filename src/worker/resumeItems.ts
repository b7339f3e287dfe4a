/**
 * `resume --from-step` naming a step inside a map's block: rather than the
 * whole map running again, each item's child execution is resumed from that
 * step (its earlier steps kept from its own log) and the parent records the
 * new results. Here: which child each item ran last (from the parent's log),
 * and how a child is resumed for its parent.
 */
import { stepIndex } from '../../machines/blocks.js';
import type { Definition } from '../../machines/definition.js';
import type { ItemsAgain } from '../../machines/events.js';
import { SmartSpecError } from '../errors.js';
import type { EventLog } from '../log/eventLog.js';
import type { LoadedExecution } from '../log/views.js';
import { planResume } from './resumePlan.js';

/**
 * The items to resume from `fromStep`, when it is inside the block of a top-level map that has
 * begun: each item's last child, with its last record's sequence now. Undefined otherwise (the
 * map, or whatever holds the step, runs again whole).
 */
export async function itemsToResume(log: EventLog, executionId: string, definition: Definition, fromStep: string): Promise<ItemsAgain | undefined> {
  const map = stepIndex(definition).get(fromStep)?.ancestors[0];
  if (map?.type !== 'map') return undefined;
  const records = await log.read(executionId);
  // The children of the map's last run: the launches after its last start.
  let begun = -1;
  records.forEach(({ record: r }, i) => {
    if (r.type === 'StepStarted' && r.stepId === map.id && r.count !== undefined) begun = i;
  });
  if (begun < 0) return undefined;
  const byIndex = new Map<number, string>();
  for (const { record: r } of records.slice(begun)) if (r.type === 'StepStarted' && r.stepId === map.id) for (const l of r.launch ?? []) byIndex.set(l.index, l.child);
  const children: ItemsAgain['children'] = {};
  await Promise.all([...byIndex].map(async ([index, child]) => {
    const last = await log.last(child);
    if (last) children[String(index)] = { child, after: last.seq };
  }));
  return { stepId: map.id, fromStep, children };
}

/**
 * The step a child is resumed from for its parent: `fromStep`, or its first step when it never
 * got there (an earlier step failed): then it runs again from its start.
 */
export function childFromStep(child: LoadedExecution, fromStep: string): string {
  try {
    planResume(child, { fromStep, ofChild: true });
    return fromStep;
  } catch (err) {
    if (!(err instanceof SmartSpecError) || (err.code !== 'INVALID_EXECUTION_STATE' && err.code !== 'STEP_NOT_FOUND')) throw err;
    return child.fold.snapshot.context.definition.steps[0].id;
  }
}
