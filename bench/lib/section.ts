/**
 * The contract between the bench runner and a section (bench/sections/<name>.ts).
 *
 * A section measures one thing. The runner owns the repetitions: it calls
 * `setup` once, then `measure` once per run, round-robin across sections
 * (run 1 of every section, then run 2 of every section, …), so the i-th
 * sample of every figure was taken at about the same moment of the machine's
 * life. Ratios are computed from those same-run pairs, never from medians.
 */

/** Everything a section gets from the runner. */
export interface BenchContext {
  /** The private nats-server started by the runner (file storage, temp store dir). */
  readonly natsUrl: string;
  /** Its process id, for sections that charge CPU time to it (/proc). */
  readonly natsPid: number;
  /** A temporary directory owned by this section; removed after the bench. */
  readonly tmpDir: string;
  /** Number of counted runs (default 5). */
  readonly runs: number;
  /** Multiplier for a section's workload sizes (1 = full; `--quick` uses 0.2). Use `ctx.count(n)`. */
  readonly scale: number;
  /** `Math.max(1, Math.round(n * scale))`. */
  count(n: number): number;
  /** Progress line on stderr (the table and JSON are the real output). */
  log(message: string): void;
}

/** Which way is better, for the table's arrow. */
export type Better = 'higher' | 'lower';

export interface FigureSpec {
  /** Key inside the section, e.g. `default.appendsPerSec`; in the JSON and in ratios of other sections it is `<section>.<key>` / `<section>:<key>`. */
  key: string;
  /** Human label for the table. */
  label: string;
  /** Unit, e.g. `events/s`, `executions/s`, `ms`. */
  unit: string;
  better: Better;
}

export interface RatioSpec {
  key: string;
  label: string;
  /** Figure keys: local (`x`) or another section's figure as `<section>:<key>` (`peer-langgraph:seq.executionsPerSec`). */
  numerator: string;
  denominator: string;
}

/** Passed to each `measure` call. */
export interface RunInfo {
  /** 0-based index of the counted run; -1 for the warm-up. */
  index: number;
  /** True for the single warm-up call whose figures are discarded. */
  warmup: boolean;
}

/** One run's values: figure key → number. Every declared figure must be present. */
export type Sample = Record<string, number>;

export interface SectionInstance {
  measure(run: RunInfo): Promise<Sample>;
  /** Release connections, servers, files. Called even when a run failed. */
  close(): Promise<void>;
  /** Workload facts to print and record (counts, concurrency, versions). */
  params?: Record<string, string | number | boolean>;
}

export interface Section {
  /** Short id, used in JSON keys and `--only`: lowercase, dashes. */
  name: string;
  /** One-line title for the table. */
  title: string;
  figures: FigureSpec[];
  ratios?: RatioSpec[];
  setup(ctx: BenchContext): Promise<SectionInstance>;
}

/**
 * Thrown from `setup` when a section cannot run on this machine for a reason
 * that is not a failure of the thing measured (an optional peer whose server
 * is absent). Recorded as `skipped` with the reason; does not fail the bench.
 */
export class SkipSection extends Error {
  override name = 'SkipSection';
}

/** Identity function that only checks the shape; `export default defineSection({...})`. */
export function defineSection(section: Section): Section {
  return section;
}
