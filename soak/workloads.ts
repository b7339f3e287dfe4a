/**
 * The mix of workflows the soak submits. Each kind says what it expects
 * (COMPLETED, or FAILED with a given error code for the ones designed to
 * fail) and which signals the soak delivers after submitting it. Every `http`
 * step calls the side-effect server with its own step id in the path, so the
 * audit can count its side effects.
 *
 * To add a kind: add an entry to WORKLOADS. The audit needs nothing more as
 * long as each http step's URL ends in /<executionId>/<stepId> (use `effect`).
 */
import type { Rng } from './rng.js';

export type Definition = { id: string; steps: Record<string, unknown>[]; parallel?: string[][] };

export interface SignalPlan { name: string; afterMs: number }

export interface Workload {
  kind: string;
  /** Relative share of submissions. */
  weight: number;
  expect: { status: 'COMPLETED' } | { status: 'FAILED'; errorCode: string; why: string };
  definition(rng: Rng, effects: string): Definition;
  /** Signals to deliver, each some time after the submission was accepted. */
  signals?(rng: Rng): SignalPlan[];
}

/** An `http` step with a counted side effect. */
export function effect(effects: string, id: string, opts: { mode?: 'hit' | 'flaky' | 'fail'; delayMs?: number; retry?: Record<string, number> } = {}) {
  const query = opts.delayMs ? `?delayMs=${opts.delayMs}` : '';
  return {
    id,
    type: 'http',
    request: { method: 'POST', url: `${effects}/${opts.mode ?? 'hit'}/{{execution.id}}/${id}${query}`, body: { step: id } },
    ...(opts.retry ? { retry: opts.retry } : {}),
  };
}

/** A signal step that fails (no retry) when its signal does not come within `timeoutMs`. */
const signalStep = (id: string, timeoutMs: number) => ({ id, type: 'signal', timeoutMs, retry: { maxAttempts: 1 } });

export const WORKLOADS: Workload[] = [
  {
    kind: 'forkjoin',
    weight: 3,
    expect: { status: 'COMPLETED' },
    definition: (rng, fx) => ({
      id: 'soak-forkjoin',
      steps: [
        effect(fx, 'draft'),
        effect(fx, 'security', { delayMs: rng.int(0, 800) }),
        effect(fx, 'perf', { delayMs: rng.int(0, 800) }),
        { id: 'legal', type: 'transform', value: { ok: true, draft: '{{steps.draft.output.status}}' } },
        effect(fx, 'merge'),
      ],
      parallel: [['security', 'perf', 'legal']],
    }),
  },
  {
    kind: 'sleep',
    weight: 2,
    expect: { status: 'COMPLETED' },
    definition: (rng, fx) => ({
      id: 'soak-sleep',
      steps: [effect(fx, 'before'), { id: 'nap', type: 'sleep', durationMs: rng.int(500, 4000) }, effect(fx, 'after')],
    }),
  },
  {
    kind: 'slow',
    weight: 2,
    expect: { status: 'COMPLETED' },
    // Requests that take seconds: a worker killed every ~10 s often dies inside one (an in-flight re-run).
    definition: (rng, fx) => ({
      id: 'soak-slow',
      steps: [effect(fx, 'first', { delayMs: rng.int(500, 2500) }), effect(fx, 'second', { delayMs: rng.int(500, 2500) }), effect(fx, 'third')],
    }),
  },
  {
    kind: 'signalled',
    weight: 2,
    expect: { status: 'COMPLETED' },
    // The timeout is far beyond the delivery delay (and its retries through NATS restarts).
    definition: (_rng, fx) => ({ id: 'soak-signalled', steps: [effect(fx, 'ask'), signalStep('approve', 60_000), effect(fx, 'act')] }),
    signals: (rng) => [{ name: 'approve', afterMs: rng.int(200, 5000) }],
  },
  {
    kind: 'signalTimeout',
    weight: 1,
    expect: { status: 'FAILED', errorCode: 'TIMEOUT', why: 'no signal is sent: the signal step times out' },
    definition: (rng, fx) => ({ id: 'soak-signal-timeout', steps: [effect(fx, 'ask'), signalStep('approve', rng.int(2000, 6000)), effect(fx, 'act')] }),
  },
  {
    kind: 'retried',
    weight: 1,
    expect: { status: 'COMPLETED' },
    // The first request answers 503, the retry 200: two side effects, one StepFailed between them.
    definition: (_rng, fx) => ({ id: 'soak-retried', steps: [effect(fx, 'flaky', { mode: 'flaky', retry: { maxAttempts: 3, initialDelayMs: 200 } }), effect(fx, 'after')] }),
  },
  {
    kind: 'failing',
    weight: 1,
    expect: { status: 'FAILED', errorCode: 'HTTP_500', why: 'its http step always answers 500' },
    definition: (_rng, fx) => ({ id: 'soak-failing', steps: [effect(fx, 'before'), effect(fx, 'broken', { mode: 'fail', retry: { maxAttempts: 2, initialDelayMs: 100 } }), effect(fx, 'never')] }),
  },
  {
    kind: 'map',
    weight: 1,
    expect: { status: 'COMPLETED' },
    // Its block has an http step, so each item is a child execution with its own log: the audit
    // follows every child (its history replays, its request ran once, the parent recorded its output).
    definition: (rng, fx) => ({
      id: 'soak-map',
      steps: [{
        id: 'perDoc', type: 'map', items: `{% [1..${rng.int(2, 5)}] %}`, maxConcurrency: 2,
        steps: [effect(fx, 'summarize', { delayMs: rng.int(0, 400) }), { id: 'shape', type: 'transform', value: '{% {"doc": item} %}' }],
      }],
    }),
  },
];
