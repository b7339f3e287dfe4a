/**
 * Read models derived from an execution's log: its current snapshot, a status
 * summary, and its checkpoints. Everything here is folded from the records;
 * nothing is stored besides the log.
 */
import { foldEvents, isCheckpointEvent, statusOf, stepPhases, type ExecutionStatus, type FoldResult, type StepPhase, type Usage } from '../../machines/index.js';
import { CheckpointNotFoundError, ExecutionNotFoundError } from '../errors.js';
import type { EventLog } from './eventLog.js';
import type { LogRecord, StoredRecord } from './records.js';

export interface LoadedExecution {
  executionId: string;
  records: StoredRecord[];
  fold: FoldResult;
}

export async function loadExecution(log: EventLog, executionId: string): Promise<LoadedExecution> {
  const records = await log.read(executionId);
  if (records.length === 0) throw new ExecutionNotFoundError(executionId);
  return { executionId, records, fold: foldRecords(executionId, records) };
}

export function foldRecords(executionId: string, records: StoredRecord[], upToSeq?: number): FoldResult {
  return foldEvents(executionId, records.map((r) => ({ seq: r.seq, event: r.record, state: r.record.state })), { upToSeq });
}

export interface StepSummary { phase: StepPhase; attempts?: number; output?: unknown; error?: unknown }

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
}

export function summarize({ executionId, records, fold }: LoadedExecution): ExecutionSummary {
  const snap = fold.snapshot;
  const ctx = snap.context;
  const status = statusOf(snap);
  const phases = stepPhases(snap);
  const steps: Record<string, StepSummary> = {};
  for (const s of ctx.definition.steps) {
    steps[s.id] = {
      phase: phases[s.id],
      ...(ctx.attempts[s.id] ? { attempts: ctx.attempts[s.id] } : {}),
      ...(s.id in ctx.outputs ? { output: ctx.outputs[s.id] } : {}),
      ...(ctx.errors[s.id] ? { error: ctx.errors[s.id] } : {}),
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
  };
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

/** A checkpoint by id (`cp-<seq>`, or the bare sequence number). */
export function findCheckpoint(executionId: string, records: StoredRecord[], id: string): Checkpoint {
  const seq = Number(/^(?:cp-)?(\d+)$/.exec(id)?.[1] ?? NaN);
  const cp = listCheckpoints(records).find((c) => c.seq === seq);
  if (!cp) throw new CheckpointNotFoundError(executionId, id);
  return cp;
}
