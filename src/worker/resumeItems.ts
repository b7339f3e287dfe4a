/**
 * `resume --from-step` naming a step inside a map's block: rather than the
 * whole map running again, each item's child execution is resumed from that
 * step (its earlier steps kept from its own log) and the parent records the
 * new results. Here: which child each item ran last (from the parent's log),
 * and how a child is resumed for its parent.
 */
import { stepIndex } from '../../machines/blocks.js';
import type { Definition } from '../../machines/definition.js';
import type { ChildAgain, ItemsAgain, StepStarted } from '../../machines/events.js';
import type { LogRecord } from '../log/records.js';
import { SmartSpecError } from '../errors.js';
import type { EventLog } from '../log/eventLog.js';
import type { LoadedExecution } from '../log/views.js';
import { planResume, type ResumePlan, type ResumeRequest } from './resumePlan.js';

/**
 * What to resume from `fromStep` besides the parent: when it is inside the block of a top-level map
 * that has begun, each item's last child; when it is a step of the child of a top-level `workflow`
 * step (not of the parent), that child. With the sequence of each child's last record now.
 * Undefined otherwise (the map, or whatever holds the step, runs again whole).
 */
export async function itemsToResume(log: EventLog, executionId: string, definition: Definition, fromStep: string): Promise<ItemsAgain | undefined> {
  const found = stepIndex(definition).get(fromStep);
  const map = found?.ancestors[0];
  if (found && map?.type !== 'map') return undefined;
  const records = (await log.read(executionId)).map((r) => r.record);
  const again = async (child: string): Promise<ChildAgain | undefined> => {
    const last = await log.last(child);
    return last ? { child, after: last.seq } : undefined;
  };
  if (!map) {
    // Not the parent's: a step of a `workflow` step's last child, if any.
    for (const w of definition.steps.filter((s) => s.type === 'workflow')) {
      const at = lastIndex(records, (r) => r.type === 'StepStarted' && r.stepId === w.id && r.child !== undefined);
      const child = at < 0 ? undefined : (records[at] as StepStarted).child;
      const start = child === undefined ? undefined : (await log.read(child))[0]?.record;
      if (start?.type !== 'ExecutionStarted' || !stepIndex(start.definition).has(fromStep)) continue;
      const ref = await again(child!);
      return ref && { stepId: w.id, fromStep, child: ref };
    }
    return undefined;
  }
  // The children of the map's last run: the launches after its last start.
  const begun = lastIndex(records, (r) => r.type === 'StepStarted' && r.stepId === map.id && r.count !== undefined);
  if (begun < 0) return undefined;
  const byIndex = new Map<number, string>();
  for (const r of records.slice(begun)) if (r.type === 'StepStarted' && r.stepId === map.id) for (const l of r.launch ?? []) byIndex.set(l.index, l.child);
  const children: Record<string, ChildAgain> = {};
  await Promise.all([...byIndex].map(async ([index, child]) => {
    const ref = await again(child);
    if (ref) children[String(index)] = ref;
  }));
  return { stepId: map.id, fromStep, children };
}

/** A resume's plan, with the children resumed from its step (see itemsToResume). */
export async function planResumeWithChildren(log: EventLog, loaded: LoadedExecution, req: ResumeRequest, historyLimit?: number): Promise<ResumePlan> {
  const items = req.fromStep && req.steps === undefined ? await itemsToResume(log, loaded.executionId, loaded.fold.snapshot.context.definition, req.fromStep) : undefined;
  return planResume(loaded, req, historyLimit, items);
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

function lastIndex(records: LogRecord[], test: (r: LogRecord) => boolean): number {
  for (let i = records.length - 1; i >= 0; i--) if (test(records[i])) return i;
  return -1;
}
