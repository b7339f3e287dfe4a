/** Closed-loop load: `total` operations with at most `inFlight` running at once. */
import type { FigureSpec } from './section.js';
import { percentile } from './stats.js';

export interface LoadResult {
  /** Wall time from the first start to the last completion. */
  seconds: number;
  /** Per-operation latency, start to completion, in ms (in completion order). */
  latenciesMs: number[];
}

/**
 * Runs `op(0) … op(total-1)`, keeping `inFlight` of them running (1 = one at a
 * time). The first rejection stops new starts and is rethrown after the
 * running ones settle.
 */
export async function closedLoop(total: number, inFlight: number, op: (i: number) => Promise<void>): Promise<LoadResult> {
  const latenciesMs: number[] = [];
  let next = 0;
  let failure: unknown;
  const lane = async () => {
    while (next < total && failure === undefined) {
      const i = next++;
      const t = performance.now();
      try {
        await op(i);
      } catch (e) {
        failure ??= e;
        return;
      }
      latenciesMs.push(performance.now() - t);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: Math.min(inFlight, total) }, lane));
  const seconds = (performance.now() - t0) / 1000;
  if (failure !== undefined) throw failure;
  return { seconds, latenciesMs };
}

/** The table rows of `throughputFigures(prefix, …)`: executions/s, p50 and p99 latency. */
export function throughputSpecs(prefix: string, label: string): FigureSpec[] {
  return [
    { key: `${prefix}.executionsPerSec`, label, unit: 'executions/s', better: 'higher' },
    { key: `${prefix}.p50Ms`, label: `${label}, p50 latency`, unit: 'ms', better: 'lower' },
    { key: `${prefix}.p99Ms`, label: `${label}, p99 latency`, unit: 'ms', better: 'lower' },
  ];
}

/** The three figures a throughput/latency measurement reports. */
export function throughputFigures(prefix: string, r: LoadResult): Record<string, number> {
  return {
    [`${prefix}.executionsPerSec`]: r.latenciesMs.length / r.seconds,
    [`${prefix}.p50Ms`]: percentile(r.latenciesMs, 50),
    [`${prefix}.p99Ms`]: percentile(r.latenciesMs, 99),
  };
}

/**
 * One run of a peer: `seqN` executions one at a time and `conN` with `inFlight`
 * running, in an order that swaps every run (the warm-up uses a quarter).
 */
export async function seqAndConcurrent(run: { index: number; warmup: boolean }, seqN: number, conN: number, inFlight: number, execute: (i: number) => Promise<void>): Promise<Record<string, number>> {
  const scale = run.warmup ? 0.25 : 1;
  const seq = () => closedLoop(Math.ceil(seqN * scale), 1, execute);
  const con = () => closedLoop(Math.ceil(conN * scale), inFlight, execute);
  let s: LoadResult;
  let c: LoadResult;
  if (run.index % 2 === 0) {
    s = await seq();
    c = await con();
  } else {
    c = await con();
    s = await seq();
  }
  return { ...throughputFigures('seq', s), ...throughputFigures('c64', c) };
}
