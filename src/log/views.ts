/**
 * Read models derived from an execution's log: its current snapshot, a status
 * summary, and its checkpoints. Everything here is folded from the records;
 * nothing is stored besides the log.
 */
import { walkSteps } from '../../machines/blocks.js';
import { applyEvent, foldEvents, isCheckpointEvent, type WorkflowSnapshot, statusOf, stepMapGet, stepMapHas, stepPhases, type ExecutionStatus, type FoldResult, type ParentLink, type StepPhase, type Usage } from '../../machines/index.js';
import type { Step } from '../../machines/definition.js';
import { progressOf } from '../../machines/containers/map.js';
import { childOf } from '../../machines/containers/workflow.js';
import { CheckpointNotFoundError, ExecutionNotFoundError, TamperedLogError } from '../errors.js';
import type { EventLog } from './eventLog.js';
import type { LogRecord, StoredRecord } from './records.js';
import { SNAPSHOT_EVERY, type SnapshotStore } from './snapshots.js';

export interface LoadedExecution {
  executionId: string;
  /** The history, or (loaded for a resume) the parts of it the resume needs. */
  records: StoredRecord[];
  fold: FoldResult;
  /** Records in the whole history (what the history limit counts). */
  recordCount: number;
}

export async function loadExecution(log: EventLog, executionId: string, known: { start?: number; last?: number } = {}): Promise<LoadedExecution> {
  // Its last record first (a read asks for it anyway): a history this process holds up to there is not read again.
  const last = known.last ?? (await log.last(executionId))?.seq;
  if (last === undefined) throw new ExecutionNotFoundError(executionId);
  const records = await log.read(executionId, 0, last, known.start);
  if (records.length === 0) throw new ExecutionNotFoundError(executionId);
  try {
    return { executionId, records, fold: foldRecords(executionId, records), recordCount: records.length };
  } catch (err) {
    throw new TamperedLogError(`the log of execution '${executionId}' does not verify: ${(err as Error).message} (run 'smartspec replay ${executionId}' for the details)`, { executionId });
  }
}

export function foldRecords(executionId: string, records: StoredRecord[], upToSeq?: number): FoldResult {
  return foldEvents(executionId, records.map((r) => ({ seq: r.seq, event: r.record, state: r.record.state })), { upToSeq });
}

/**
 * Load what a resume needs without reading the whole history: the current
 * snapshot (nearest stored snapshot + the records after it) and, for a
 * checkpoint further back, the snapshot there (likewise). The records are
 * then only those segments; anything that needs more falls back to a full read.
 */
export async function loadForResume(log: EventLog, snapshots: SnapshotStore | undefined, executionId: string, checkpointSeq?: number): Promise<LoadedExecution> {
  // The list of snapshots is asked for alongside: a get, and the history's span decides whether it is used.
  const [last, start, recorded] = await Promise.all([log.last(executionId), log.startSeq(executionId), snapshots?.recordedSeqs(executionId).catch(() => [])]);
  if (!last) throw new ExecutionNotFoundError(executionId);
  const whole = () => loadExecution(log, executionId, { start, last: last.seq });
  // A runner snapshots only after SNAPSHOT_EVERY records of its own, so a history spanning fewer
  // stream sequences has none (and its snapshot keys are not listed: a consumer, several requests).
  const short = start !== undefined && last.seq - start < SNAPSHOT_EVERY - 1;
  if (short || !snapshots) return whole();
  const listed = recorded ?? (await snapshots.seqs(executionId).catch(() => []));
  const seqs = listed.filter((s) => s <= last.seq).sort((a, b) => b - a);
  // A checkpoint before the first snapshot is folded from the start anyway: so is the rest.
  if (seqs.length === 0 || (checkpointSeq !== undefined && checkpointSeq < seqs[seqs.length - 1])) return whole();
  try {
    // The newest snapshot and the records after it, together.
    const [end, after] = await Promise.all([snapshots.at(executionId, seqs[0]), log.read(executionId, seqs[0] + 1, last.seq)]);
    if (!end || end.stored.count === undefined) return await whole();
    const checkpoints = new Map<number, WorkflowSnapshot>();
    const segments: StoredRecord[][] = [];
    const tail = [{ seq: end.stored.seq, record: end.stored.record }, ...after];
    // Checkpoints before the tail that are needed: the one asked for, and those that resumes
    // in the tail were rebuilt at (replaying them needs the snapshot there).
    const wanted = new Set<number>(checkpointSeq !== undefined && checkpointSeq < end.stored.seq ? [checkpointSeq] : []);
    tail.forEach((r, i) => {
      if (i > 0 && r.record.type === 'ExecutionResumed' && r.record.checkpointSeq < end.stored.seq) wanted.add(r.record.checkpointSeq);
    });
    for (const seq of [...wanted].sort((a, b) => a - b)) {
      if (checkpoints.has(seq)) continue;
      const from = seqs.find((s) => s <= seq);
      if (from === undefined) return await whole();
      const [at, records] = await Promise.all([snapshots.at(executionId, from), log.read(executionId, from + 1, seq)]);
      if (!at) return await whole();
      const segment = [{ seq: at.stored.seq, record: at.stored.record }, ...records];
      foldFrom(at.snapshot, segment, checkpoints);
      segments.push(segment);
    }
    const fold = foldFrom(end.snapshot, tail, checkpoints);
    const bySeq = new Map<number, StoredRecord>();
    for (const r of [...segments.flat(), ...tail]) bySeq.set(r.seq, r);
    return { executionId, records: [...bySeq.values()].sort((a, b) => a.seq - b.seq), fold, recordCount: end.stored.count + tail.length - 1 };
  } catch {
    return whole(); // a segment that does not fold on its own: read it all
  }
}

/** Fold records after a restored snapshot (the first record is the snapshot's own). */
function foldFrom(start: WorkflowSnapshot, records: StoredRecord[], checkpoints: Map<number, WorkflowSnapshot>): FoldResult {
  let snapshot = start;
  checkpoints.set(records[0].seq, start);
  let lastSeq = records[0].seq;
  for (const r of records.slice(1)) {
    snapshot = applyEvent(snapshot, r.record, checkpoints, lastSeq);
    if (isCheckpointEvent(r.record)) checkpoints.set(r.seq, snapshot);
    lastSeq = r.seq;
  }
  return { snapshot, checkpoints, mismatches: [], lastSeq };
}

export interface StepSummary {
  phase: StepPhase;
  attempts?: number;
  output?: unknown;
  error?: unknown;
  /** While the step waits on its durable timer: a sleep's wake time. */
  wakeAt?: string;
  /** While a signal step waits: when it times out. */
  deadline?: string;
  /** A `workflow` step: the child execution it started (the latest attempt's). */
  child?: string;
  /** A map under way: how many items there are, have a result, run now, failed. */
  items?: { count: number; settled: number; running: number; failed: number };
}

export interface ExecutionSummary {
  executionId: string;
  workflowId: string;
  status: ExecutionStatus;
  state: unknown;
  steps: Record<string, StepSummary>;
  output?: unknown;
  error?: unknown;
  usage: Usage;
  budget?: { maxTokens: number };
  startedAt: string;
  updatedAt: string;
  endedAt?: string;
  events: number;
  lastSeq: number;
  /** A child execution: the parent step it reports to. */
  parent?: ParentLink;
}

function waitingTimer(type: string, phase: StepPhase, timer: { at: string; attempt: number } | undefined, attempt: number | undefined) {
  if (phase !== 'waiting' || !timer || timer.attempt !== attempt) return {};
  return type === 'sleep' ? { wakeAt: timer.at } : { deadline: timer.at };
}

export function summarize({ executionId, records, fold }: LoadedExecution): ExecutionSummary {
  const snap = fold.snapshot;
  const ctx = snap.context;
  const status = statusOf(snap);
  const phases = stepPhases(snap);
  const steps: Record<string, StepSummary> = {};
  // Every step of the tree; a step inside a container that is not active is done (it has an output) or pending.
  for (const { step: s } of walkSteps(ctx.definition.steps)) {
    const phase = phases[s.id] ?? (stepMapHas(ctx.outputs, s.id) ? 'done' : 'pending');
    steps[s.id] = {
      phase,
      ...(stepMapGet(ctx.attempts, s.id) ? { attempts: stepMapGet(ctx.attempts, s.id) } : {}),
      ...(stepMapHas(ctx.outputs, s.id) ? { output: stepMapGet(ctx.outputs, s.id) } : {}),
      ...(stepMapGet(ctx.errors, s.id) ? { error: stepMapGet(ctx.errors, s.id) } : {}),
      ...waitingTimer(s.type, phase, ctx.timers?.[s.id], stepMapGet(ctx.attempts, s.id)),
      ...childLinks(ctx, s),
    };
  }
  const first = records[0].record;
  const last = records[records.length - 1].record;
  const terminal = status === 'COMPLETED' || status === 'FAILED' || status === 'CANCELLED';
  return {
    executionId,
    workflowId: first.workflowId,
    status,
    state: snap.value,
    steps,
    ...(ctx.output !== undefined ? { output: ctx.output } : {}),
    ...(ctx.error ? { error: ctx.error } : {}),
    usage: ctx.usage,
    ...(ctx.budget ? { budget: ctx.budget } : {}),
    startedAt: first.at,
    updatedAt: last.at,
    ...(terminal ? { endedAt: last.at } : {}),
    events: records.length,
    lastSeq: records[records.length - 1].seq,
    ...(ctx.parent ? { parent: ctx.parent } : {}),
  };
}

/** Where a step's children are: a `workflow` step's child, a map's items in numbers. */
function childLinks(ctx: WorkflowSnapshot['context'], step: Step): Pick<StepSummary, 'child' | 'items'> {
  if (step.type === 'workflow') {
    const child = childOf(ctx, step.id);
    return child ? { child: child.id } : {};
  }
  const p = step.type === 'map' ? progressOf(ctx, step.id) : undefined;
  return p ? { items: { count: p.count, settled: p.settled, running: Object.keys(p.running).length, failed: p.failed.length } } : {};
}

export interface Checkpoint {
  /** `cp-<seq>`: stable, and names where in the log it stands. */
  id: string;
  seq: number;
  type: LogRecord['type'];
  /** The step that had just completed (none for the start). */
  stepId?: string;
  at: string;
  state: unknown;
}

export const checkpointId = (seq: number) => `cp-${seq}`;

export function listCheckpoints(records: StoredRecord[]): Checkpoint[] {
  return records
    .filter((r) => isCheckpointEvent(r.record))
    .map(({ seq, record }) => ({
      id: checkpointId(seq),
      seq,
      type: record.type,
      ...('stepId' in record && record.stepId ? { stepId: record.stepId } : {}),
      at: record.at,
      state: record.state,
    }));
}

/** The sequence a checkpoint id names (`cp-<seq>` or the bare number), if it is one. */
export function checkpointSeqOf(id: string | undefined): number | undefined {
  const m = id === undefined ? null : /^(?:cp-)?(\d+)$/.exec(id);
  return m ? Number(m[1]) : undefined;
}

/** A checkpoint by id (`cp-<seq>`, or the bare sequence number). */
export function findCheckpoint(executionId: string, records: StoredRecord[], id: string): Checkpoint {
  const seq = checkpointSeqOf(id) ?? NaN;
  const cp = listCheckpoints(records).find((c) => c.seq === seq);
  if (!cp) throw new CheckpointNotFoundError(executionId, id);
  return cp;
}
