/**
 * Prometheus metrics for the engine: what was appended, how executions ended,
 * how long steps took. Fed from the engine's record hook; served by the edge's
 * /metrics when edge and worker share a process (`smartspec serve`).
 */
import { findStep } from '../../machines/blocks.js';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { WorkflowSnapshot } from '../../machines/index.js';
import type { StoredRecord } from '../log/records.js';

export function engineMetrics(registry: Registry): (stored: StoredRecord, snapshot: WorkflowSnapshot) => void {
  const events = new Counter({ name: 'smartspec_events_appended_total', help: 'Records appended to the event log, by type', labelNames: ['type'], registers: [registry] });
  const ended = new Counter({ name: 'smartspec_executions_ended_total', help: 'Executions that reached an end, by status', labelNames: ['status'], registers: [registry] });
  const steps = new Histogram({
    name: 'smartspec_step_duration_seconds',
    help: 'Step latency reported by executors (llm, http), by step type',
    labelNames: ['type'],
    buckets: [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 30, 120],
    registers: [registry],
  });
  const tokens = new Counter({ name: 'smartspec_llm_tokens_total', help: 'Tokens used by llm steps', registers: [registry] });
  const END = { ExecutionCompleted: 'COMPLETED', ExecutionFailed: 'FAILED', ExecutionCancelled: 'CANCELLED' } as const;

  return ({ record }, snapshot) => {
    events.inc({ type: record.type });
    if (record.type in END) ended.inc({ status: END[record.type as keyof typeof END] });
    if (record.type === 'StepCompleted') {
      if (record.latencyMs !== undefined) {
        const type = findStep(snapshot.context.definition, record.stepId)?.type ?? 'unknown';
        steps.observe({ type }, record.latencyMs / 1000);
      }
      if (record.usage) tokens.inc(record.usage.totalTokens);
    }
  };
}
