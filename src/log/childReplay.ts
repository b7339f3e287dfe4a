/**
 * Replay of an execution and its children: each log is replayed (chain and
 * states, src/log/replay.ts), then each child the parent's records name is
 * checked against them: the child's ExecutionStarted names this parent and
 * step (and item), and the parent's record of the child's result matches the
 * child's end (its output, or that it failed or was cancelled). Children of
 * children are checked the same way.
 */
import { isDeepStrictEqual } from 'node:util';
import type { StoredRecord } from './records.js';
import { replayExecution, type ReplayReport } from './replay.js';

export interface ChildCheck { childId: string; parentId: string; stepId: string; index?: number; ok: boolean; error?: string }

export interface FamilyReplayReport {
  ok: boolean;
  /** Every execution's own replay: the parent first, then its children (depth first). */
  executions: ReplayReport[];
  children: ChildCheck[];
}

type Rec = Record<string, any>;

export async function replayWithChildren(executionId: string, load: (id: string) => Promise<StoredRecord[]>): Promise<FamilyReplayReport> {
  const executions: ReplayReport[] = [];
  const children: ChildCheck[] = [];
  const visit = async (id: string, records: StoredRecord[]): Promise<void> => {
    executions.push(replayExecution(id, records));
    // The child each start names, and the result the parent recorded for it (the last one: a child reports once).
    const started = new Map<string, Rec>();
    const results = new Map<string, Rec>();
    for (const { record } of records as { record: Rec }[]) {
      // A workflow step names one child; a map's records name several (launch, results, failures).
      if (record.type === 'StepStarted') {
        if (typeof record.child === 'string') started.set(record.child, record);
        for (const l of record.launch ?? []) started.set(l.child, { stepId: record.stepId, index: l.index });
      } else if (record.type === 'StepCompleted' || record.type === 'StepFailed') {
        if (typeof record.child === 'string') results.set(record.child, record);
        // Items run inline name no child: the parent's own replay checks them.
        for (const r of record.results ?? []) if (r.child) results.set(r.child, { type: 'StepCompleted', output: r.output });
        for (const f of record.failures ?? []) if (f.child) results.set(f.child, { type: 'StepFailed', error: f.error });
      }
    }
    for (const [childId, start] of started) {
      const check: ChildCheck = { childId, parentId: id, stepId: start.stepId, ...(start.index !== undefined ? { index: start.index } : {}), ok: false };
      children.push(check);
      const childRecords = await load(childId);
      const first = childRecords[0]?.record as Rec | undefined;
      const last = childRecords[childRecords.length - 1]?.record as Rec | undefined;
      const result = results.get(childId);
      if (!first) check.error = 'the child has no log';
      else if (first.executionId !== childId) check.error = `the log read for the child belongs to '${first.executionId}'`;
      else if (first.parent?.executionId !== id || first.parent?.stepId !== start.stepId || first.parent?.index !== start.index) check.error = `the child's ExecutionStarted names parent ${JSON.stringify(first.parent ?? null)}, not ${JSON.stringify({ executionId: id, stepId: start.stepId, index: start.index })}`;
      else if (result) check.error = resultMismatch(result, last);
      check.ok = check.error === undefined;
      if (first && first.executionId === childId) await visit(childId, childRecords);
    }
  };
  await visit(executionId, await load(executionId));
  return { ok: executions.every((e) => e.ok) && children.every((c) => c.ok), executions, children };
}

/** Why the parent's record of a child's result does not match the child's end (undefined: it does). */
function resultMismatch(result: Rec, end: Rec | undefined): string | undefined {
  if (result.type === 'StepCompleted') {
    if (end?.type !== 'ExecutionCompleted') return `the parent recorded the child completed; the child's log ends with ${end?.type ?? 'nothing'}`;
    return isDeepStrictEqual(result.output, end.output) ? undefined : "the parent's record of the child's output differs from the child's ExecutionCompleted";
  }
  if (end?.type !== 'ExecutionFailed' && end?.type !== 'ExecutionCancelled') return `the parent recorded the child failed; the child's log ends with ${end?.type ?? 'nothing'}`;
  return undefined;
}
