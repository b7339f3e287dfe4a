/** Small, dependency-free statistics for the bench. */

export interface Summary {
  median: number;
  min: number;
  max: number;
  /** The raw per-run values, in run order. */
  samples: number[];
}

export function summarize(samples: number[]): Summary {
  if (samples.length === 0) throw new Error('summarize: no samples');
  const sorted = [...samples].sort((a, b) => a - b);
  return { median: median(sorted), min: sorted[0], max: sorted[sorted.length - 1], samples: [...samples] };
}

/** Median of an already sorted array (mean of the two middle values for an even count). */
function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) throw new Error('percentile: no values');
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1];
}

/** Pair-by-pair ratios: numerator[i] / denominator[i] for each run i. */
export function pairRatios(numerator: number[], denominator: number[]): number[] {
  if (numerator.length !== denominator.length) throw new Error(`pairRatios: ${numerator.length} vs ${denominator.length} samples`);
  return numerator.map((n, i) => n / denominator[i]);
}
