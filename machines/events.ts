/**
 * The events the workflow machine takes. They are exactly the bodies of the
 * event-log records (ARCHITECTURE.md, "The event log"): the log is the list of
 * events the actor received, so replaying it re-derives every state.
 * Timestamps and ids arrive in the records; machines never read the clock.
 */
import type { Budget, Definition } from './definition.js';

export interface ErrorInfo {
  code: string;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown>;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/**
 * Who caused a record: the API key (and its tenant) behind the command. Only
 * records an outside actor causes carry it (ExecutionStarted, ExecutionResumed,
 * ExecutionCancelled, SignalReceived); the machine ignores it.
 */
export interface Principal {
  tenant: string;
  keyId: string;
}

/** Record types that must name their principal (once a log has one: see src/log/replay.ts). */
export const PRINCIPAL_EVENT_TYPES = ['ExecutionStarted', 'ExecutionResumed', 'ExecutionCancelled', 'SignalReceived'] as const;

export const EVENT_TYPES = [
  'ExecutionStarted',
  'StepQueued',
  'StepStarted',
  'StepCompleted',
  'StepFailed',
  'SignalReceived',
  'ExecutionResumed',
  'ExecutionCompleted',
  'ExecutionFailed',
  'ExecutionCancelled',
  'ExecutionQueued',
  'ExecutionAdmitted',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** The event a trigger started an execution for: where it was stored, and its headers that are not secrets. */
export interface TriggeringEvent { subject: string; stream: string; seq: number; headers?: Record<string, string> }
/** A child execution's link to the step of its parent that started it (a `workflow` step, or an item of a `map`). */
export interface ParentLink { executionId: string; stepId: string; attempt: number; index?: number }
/** What a map item's block may read besides the parent's input: its item, index, the outer steps' outputs it names, the iteration around it. */
export interface OuterScope {
  item: unknown;
  index: number;
  steps: Record<string, { output: unknown }>;
  /** The iteration of a loop around the map. */
  iteration?: number;
}
export interface ExecutionStarted {
  type: 'ExecutionStarted'; definition: Definition; input: unknown; budget?: Budget; principal?: Principal; trigger?: TriggeringEvent;
  /** A child execution: the parent step it reports to. */
  parent?: ParentLink;
  /** A map item's child: the values its block reads from the parent. */
  outer?: OuterScope;
}
export interface StepStarted {
  type: 'StepStarted';
  stepId: string;
  /** A step of a map item's child execution: the item (its index) it runs for. */
  item?: number;
  attempt: number;
  /** A sleep: when it ends (ISO-8601), and the duration it resolved to. Its timer is durable: any worker fires it. */
  wakeAt?: string;
  durationMs?: number;
  /** A signal step with `timeoutMs`: when it times out without its signal (ISO-8601). */
  deadline?: string;
  /** A waitForEvent step: events stored in the events stream after this sequence count. */
  afterSeq?: number;
  /** A waitForEvent step with `after`: the time it resolved to (ISO-8601); events published before it do not count. */
  after?: string;
  /** A switch: the case the worker chose (its index, "default", or null for none). */
  case?: number | 'default' | null;
  /** A loop: the iteration it enters (1-based). A step inside a loop: the iteration it belongs to. */
  iteration?: number;
  /** A step with `concurrency` or `rateLimit`: the keys it holds (as evaluated), and how long it was queued. */
  keys?: string[];
  queuedMs?: number;
  /** A map: the items it runs its block for (the array, or a payload ref to it), and how many. */
  items?: unknown;
  count?: number;
  /**
   * A map: the items it starts now (0-based), each with the id of its child execution; under a
   * token budget, the tokens each item is given (held back from the parent's budget until it reports).
   */
  launch?: { index: number; child: string; maxTokens?: number }[];
  /** A `workflow` step: the id of the child execution it starts. */
  child?: string;
  /** A `workflow` step: the registered version the child runs. */
  version?: number;
}
/**
 * A step over a concurrency limit or a rate limit waits, queued, holding no worker slot
 * (src/concurrency). `keys`: as the worker evaluated them (never evaluated again). `until`: a
 * rate limit's reserved start time (ISO-8601); without it the step waits for a slot of a key.
 */
export interface StepQueued {
  type: 'StepQueued';
  stepId: string;
  attempt: number;
  keys: string[];
  /** When it was queued (ISO-8601): StepStarted's `queuedMs` counts from here. */
  since: string;
  /** What it waits for: its rate key's reserved time (`until`), or a slot of a concurrency key. */
  reason: 'rate' | 'concurrency';
  until?: string;
  iteration?: number;
  /** A step of a map item's child execution: the item (its index) it runs for. */
  item?: number;
}
export interface StepCompleted {
  type: 'StepCompleted';
  stepId: string;
  /** A step of a map item's child execution: the item (its index) it runs for. */
  item?: number;
  attempt?: number;
  output: unknown;
  /** The step's `when` was false: it did not run. */
  skipped?: boolean;
  usage?: Usage;
  latencyMs?: number;
  /** Fired by a timer (a sleep's end): how long after its `wakeAt` it was recorded. */
  lateMs?: number;
  /** A step inside a loop: the iteration it belongs to. */
  iteration?: number;
  /** A loop: how many iterations ran. */
  iterations?: number;
  /** A `workflow` step's result, or one map item's as its child reports it: the child execution it came from. */
  index?: number;
  child?: string;
  /**
   * A map: the results of the items whose children completed since its last record. Items of a
   * pure block run inline (containers/mapInline.ts): no `child`, and `steps` holds the output of
   * every step of the block, by id.
   */
  results?: { index: number; child?: string; output: unknown; usage?: Usage; steps?: Record<string, unknown> }[];
}
export interface StepFailed {
  type: 'StepFailed';
  stepId: string;
  /** A step of a map item's child execution: the item (its index) it runs for. */
  item?: number;
  attempt: number;
  error: ErrorInfo;
  retryInMs?: number;
  /** Tokens the failed attempt spent (an LLM step's asks): they count against the budget too. */
  usage?: Usage;
  /** Fired by a timer (a signal's timeout): how long after its `deadline` it was recorded. */
  lateMs?: number;
  /** A step inside a loop: the iteration it belongs to. */
  iteration?: number;
  /** A `workflow` step's failure, or one map item's as its child reports it: the child execution it came from. */
  index?: number;
  child?: string;
  /** A map: the items whose children failed since its last record (`error` is the first of them); inline items as in `results`. */
  failures?: { index: number; child?: string; error: ErrorInfo; steps?: Record<string, unknown> }[];
}
export interface SignalReceived { type: 'SignalReceived'; name: string; payload: unknown; stepId?: string; principal?: Principal }
/**
 * Not a transition of the machine: the actor is rebuilt at the checkpoint
 * (see resume.ts). Carries everything needed to rebuild it again on replay.
 */
export interface ExecutionResumed {
  type: 'ExecutionResumed';
  checkpointSeq: number;
  fromStep?: string;
  /** From a step inside a map's block: the map's items whose child executions are resumed from that step. */
  items?: ItemsAgain;
  /** Present when the resume replaced the steps. */
  definition?: Definition;
  budget?: Budget;
  reason: 'resume' | 'recovery';
  principal?: Principal;
}
/**
 * A resume from a step inside a map's block, or inside a `workflow` step's child: each item that
 * ran (`children`, by index), or the step's child (`child`), is resumed from that step: the child,
 * and the sequence of its last record then, so that it is resumed once however often its parent
 * makes sure of it.
 */
export interface ItemsAgain {
  stepId: string;
  fromStep: string;
  children?: Record<string, ChildAgain>;
  child?: ChildAgain;
}
export interface ChildAgain { child: string; after: number }
export interface ExecutionCompleted { type: 'ExecutionCompleted'; output: unknown }
export interface ExecutionFailed { type: 'ExecutionFailed'; stepId?: string; error: ErrorInfo }
export interface ExecutionCancelled { type: 'ExecutionCancelled'; reason?: string; principal?: Principal }
/**
 * A workflow-level key is at its limit: the execution waits before its first step, for its rate
 * key's reserved time `until` (`reason: "rate"`) or for a slot of a concurrency key.
 */
export interface ExecutionQueued { type: 'ExecutionQueued'; keys: string[]; since: string; reason: 'rate' | 'concurrency'; until?: string }
/** The execution holds its workflow-level concurrency keys; its steps may run. */
export interface ExecutionAdmitted { type: 'ExecutionAdmitted'; keys: string[]; queuedMs?: number }

export type WorkflowEvent =
  | ExecutionStarted
  | StepQueued
  | StepStarted
  | StepCompleted
  | StepFailed
  | SignalReceived
  | ExecutionResumed
  | ExecutionCompleted
  | ExecutionFailed
  | ExecutionCancelled
  | ExecutionQueued
  | ExecutionAdmitted;
