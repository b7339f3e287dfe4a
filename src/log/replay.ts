/**
 * Replay for audit: check the hash chain, then fold every recorded event
 * through the machine with XState's pure `transition` and compare the state
 * the writer recorded with the one recomputed now. No step is ever called:
 * outputs come from the log.
 */
import { applyEvent, initialSnapshot, isCheckpointEvent, type WorkflowSnapshot } from '../../machines/index.js';
import type { StoredRecord } from './records.js';
import { verifyChain, type ChainBreak } from './records.js';

export interface ReplayStep {
  seq: number;
  type: string;
  stepId?: string;
  recorded: unknown;
  recomputed: unknown;
  ok: boolean;
  error?: string;
}

export interface ReplayReport {
  executionId: string;
  ok: boolean;
  events: ReplayStep[];
  chainBreaks: ChainBreak[];
}

export function replayExecution(executionId: string, records: StoredRecord[]): ReplayReport {
  const chainBreaks = verifyChain(records);
  const events: ReplayStep[] = [];
  const first = records[0]?.record;
  let snapshot: WorkflowSnapshot | undefined = first?.type === 'ExecutionStarted' ? initialSnapshot(executionId, first.definition) : undefined;
  const checkpoints = new Map<number, WorkflowSnapshot>();
  let prevSeq = 0;
  for (const { seq, record } of records) {
    const step: ReplayStep = { seq, type: record.type, ...('stepId' in record && record.stepId ? { stepId: record.stepId } : {}), recorded: record.state, recomputed: undefined, ok: false };
    if (!snapshot) {
      step.error = 'the log does not begin with ExecutionStarted';
    } else if (record.executionId !== executionId) {
      step.error = `record belongs to execution '${record.executionId}'`;
    } else {
      try {
        if (record.type !== 'ExecutionResumed' && !snapshot.can(record)) throw new Error(`${record.type} does not apply in state ${JSON.stringify(snapshot.value)}`);
        snapshot = applyEvent(snapshot, record, checkpoints, prevSeq);
        if (isCheckpointEvent(record)) checkpoints.set(seq, snapshot);
        step.recomputed = snapshot.value;
        step.ok = canonical(step.recomputed) === canonical(record.state);
        if (!step.ok) step.error = 'recorded state differs from the recomputed one';
      } catch (err) {
        step.error = (err as Error).message;
      }
    }
    events.push(step);
    prevSeq = seq;
  }
  return { executionId, ok: chainBreaks.length === 0 && events.length > 0 && events.every((e) => e.ok), events, chainBreaks };
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val) => (val && typeof val === 'object' && !Array.isArray(val) ? Object.fromEntries(Object.entries(val).sort(([a], [b]) => a.localeCompare(b))) : val));
}
