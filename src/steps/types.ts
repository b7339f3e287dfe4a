/** What a step executor gets and returns. Executors are the only place steps touch the world. */
import type { Usage } from '../../machines/events.js';
import type { Step, StepType } from '../../machines/definition.js';

export interface StepRun<S extends Step = Step> {
  executionId: string;
  workflowId: string;
  /** The step with its templates already resolved. */
  step: S;
  attempt: number;
  /** Aborted on cancel and on the step's timeout. */
  signal: AbortSignal;
  /** Tokens used so far by the execution and its budget (for llm steps). */
  usage: Usage;
  budget?: { maxTokens: number };
  /** The largest output the step may produce (SMARTSPEC_PAYLOAD_MAX_BYTES); executors that read data stop there. */
  maxOutputBytes?: number;
}

export interface StepResult {
  output: unknown;
  usage?: Usage;
  latencyMs?: number;
}

export type StepExecutor<S extends Step = Step> = (run: StepRun<S>) => Promise<StepResult>;

/** Executors by step type; `signal` steps have none (they wait for a signal). */
export type StepExecutors = Partial<{ [T in StepType]: StepExecutor<Extract<Step, { type: T }>> }>;
