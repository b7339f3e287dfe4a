/**
 * Replay for audit: check the hash chain, then fold every recorded event
 * through the machine with XState's pure `transition` and compare the state
 * the writer recorded with the one recomputed now. No step is ever called:
 * outputs come from the log.
 *
 * Principals (who caused a record): ExecutionStarted, ExecutionResumed,
 * ExecutionCancelled and SignalReceived must each carry a well-formed
 * `principal` once any record of the log has carried one. A log with none at
 * all was written before principals existed: it still verifies, and the report
 * says so (`principals: 'absent'`). A log that stops carrying them midway fails.
 */
import { applyEvent, initialSnapshot, isCheckpointEvent, PRINCIPAL_EVENT_TYPES, type WorkflowSnapshot } from '../../machines/index.js';
import { principalSchema } from '../auth/principal.js';
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
  /** 'recorded': the log names who caused each outside-caused record; 'absent': written before principals. */
  principals: 'recorded' | 'absent';
}

const NEEDS_PRINCIPAL = new Set<string>(PRINCIPAL_EVENT_TYPES);

export function replayExecution(executionId: string, records: StoredRecord[]): ReplayReport {
  const chainBreaks = verifyChain(records);
  const events: ReplayStep[] = [];
  const first = records[0]?.record;
  let snapshot: WorkflowSnapshot | undefined = first?.type === 'ExecutionStarted' ? initialSnapshot(executionId, first.definition) : undefined;
  const checkpoints = new Map<number, WorkflowSnapshot>();
  let prevSeq = 0;
  let principalSince: number | undefined;
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
        const principalError = checkPrincipal(record, principalSince);
        if (principalError) Object.assign(step, { ok: false, error: principalError });
        if (NEEDS_PRINCIPAL.has(record.type) && 'principal' in record && record.principal) principalSince ??= seq;
      } catch (err) {
        step.error = (err as Error).message;
      }
    }
    events.push(step);
    prevSeq = seq;
  }
  return { executionId, ok: chainBreaks.length === 0 && events.length > 0 && events.every((e) => e.ok), events, chainBreaks, principals: principalSince === undefined ? 'absent' : 'recorded' };
}

function checkPrincipal(record: StoredRecord['record'], since: number | undefined): string | undefined {
  if (!NEEDS_PRINCIPAL.has(record.type)) return undefined;
  const principal = (record as { principal?: unknown }).principal;
  if (principal === undefined) return since === undefined ? undefined : `${record.type} names no principal, required since #${since}`;
  const parsed = principalSchema.safeParse(principal);
  return parsed.success ? undefined : `${record.type} has a malformed principal: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'principal'}: ${i.message}`).join('; ')}`;
}

function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, val) => (val && typeof val === 'object' && !Array.isArray(val) ? Object.fromEntries(Object.entries(val).sort(([a], [b]) => a.localeCompare(b))) : val));
}
