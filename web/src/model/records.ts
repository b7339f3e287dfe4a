/** What the event routes answer: log records (machines/events.ts) with their stream position. */
import type { WorkflowEvent } from '../../../machines/events.js';
import type { Definition } from '../../../machines/definition.js';

export type { Definition };

export type EventRecord = WorkflowEvent & {
  seq: number;
  executionId: string;
  workflowId: string;
  at: string;
  state: unknown;
  hash: string;
};

export const STATUSES = ['PENDING', 'RUNNING', 'WAITING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
export type Status = (typeof STATUSES)[number];
export const isTerminal = (s: string | undefined) => s === 'COMPLETED' || s === 'FAILED' || s === 'CANCELLED';

/** GET /executions/:id (src/log/views.ts `summarize`); a submitted, not yet started one has only the first fields. */
export interface ExecutionSummary {
  executionId: string;
  workflowId: string;
  status: Status;
  state?: unknown;
  steps?: Record<string, StepSummary>;
  output?: unknown;
  error?: ErrorInfo;
  usage?: Usage;
  budget?: { maxTokens: number };
  startedAt?: string;
  updatedAt?: string;
  endedAt?: string;
  createdAt?: string;
  events?: number;
  lastSeq?: number;
}

export interface StepSummary {
  phase: string;
  attempts?: number;
  output?: unknown;
  error?: ErrorInfo;
  wakeAt?: string;
  deadline?: string;
}

export interface ErrorInfo { code: string; message: string; retryable: boolean; details?: Record<string, unknown> }
export interface Usage { promptTokens: number; completionTokens: number; totalTokens: number }

/** GET /executions entries (src/registry/executionIndex.ts). */
export interface IndexEntry {
  executionId: string;
  workflowId: string;
  status: Status;
  createdAt: string;
  updatedAt: string;
  tenant?: string;
}

/** The definition in force at the end of the log: the start's, or the last resume that replaced it. */
export function currentDefinition(records: EventRecord[]): Definition | undefined {
  let def: Definition | undefined;
  for (const r of records) {
    if (r.type === 'ExecutionStarted') def = r.definition;
    else if (r.type === 'ExecutionResumed' && r.definition) def = r.definition;
  }
  return def;
}
