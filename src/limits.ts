/**
 * The bounds that keep every store and every process from growing without
 * limit (README, "Configuration"): steps per definition, records per
 * execution, bytes of the event-log stream, and how long ended executions are
 * kept. Read from the environment once; a bad value stops the process at
 * start with the variable's name.
 */
import { ConfigError } from './edge/config.js';

export interface Limits {
  /** Steps a definition may have (SMARTSPEC_MAX_STEPS). */
  maxSteps: number;
  /** Records one execution's history may hold (SMARTSPEC_HISTORY_LIMIT); the last one ends it FAILED. */
  historyLimit: number;
  /** Bytes the event-log stream may hold (SMARTSPEC_STREAM_MAX_BYTES); appends beyond are refused. */
  streamMaxBytes: number;
  /** Ended executions older than this are purged (SMARTSPEC_RETENTION); undefined: kept. */
  retentionMs?: number;
  /** How often the worker purges (SMARTSPEC_RETENTION_INTERVAL). */
  retentionIntervalMs: number;
  /** A running execution whose log is quiet this long and that no live process hosts is continued (SMARTSPEC_STUCK_AFTER). */
  stuckAfterMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxSteps: 5_000,
  historyLimit: 50_000,
  streamMaxBytes: 5 * 1024 ** 3,
  retentionIntervalMs: 5 * 60_000,
  stuckAfterMs: 30_000,
};

const UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30d`, `12h`, `90m`, `45s`, `500ms`, `2w`: a duration in ms; undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/i.exec(text);
  if (!m) return undefined;
  const ms = Number(m[1]) * UNITS_MS[m[2].toLowerCase()];
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

const UNITS_BYTES: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4 };

/** `5368709120`, `500MB`, `5GiB`: a size in bytes; undefined when it is not one. */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?\s*$/i.exec(text);
  if (!m) return undefined;
  const bytes = Number(m[1]) * UNITS_BYTES[(m[2] ?? 'b').toLowerCase()];
  return Number.isSafeInteger(Math.round(bytes)) ? Math.round(bytes) : undefined;
}

/** The limits from the environment; throws a ConfigError naming every bad variable. */
export function loadLimits(env: NodeJS.ProcessEnv = process.env): Limits {
  const issues: { variable: string; message: string }[] = [];
  const read = <T>(name: string, parse: (v: string) => T | undefined, check: (v: T) => string | undefined, expected: string): T | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const value = parse(raw);
    const problem = value === undefined ? `'${raw}' is not ${expected}` : check(value);
    if (problem) issues.push({ variable: name, message: problem });
    return problem ? undefined : value;
  };
  const int = (v: string) => (/^\s*\d+\s*$/.test(v) ? Number(v) : undefined);
  const atLeast = (min: number) => (v: number) => (v >= min ? undefined : `must be at least ${min.toLocaleString('en')}`);
  const limits: Limits = {
    maxSteps: read('SMARTSPEC_MAX_STEPS', int, atLeast(1), 'a whole number') ?? DEFAULT_LIMITS.maxSteps,
    historyLimit: read('SMARTSPEC_HISTORY_LIMIT', int, atLeast(10), 'a whole number') ?? DEFAULT_LIMITS.historyLimit,
    // A JetStream stream needs room for at least a few records; 1 MB is the floor.
    streamMaxBytes: read('SMARTSPEC_STREAM_MAX_BYTES', parseByteSize, atLeast(1_000_000), 'a size (e.g. 5GiB, 500MB, or bytes)') ?? DEFAULT_LIMITS.streamMaxBytes,
    retentionMs: read('SMARTSPEC_RETENTION', parseDuration, atLeast(1000), 'a duration (e.g. 30d, 12h, 90m)'),
    retentionIntervalMs: read('SMARTSPEC_RETENTION_INTERVAL', parseDuration, atLeast(1000), 'a duration (e.g. 5m, 30s)') ?? DEFAULT_LIMITS.retentionIntervalMs,
    stuckAfterMs: read('SMARTSPEC_STUCK_AFTER', parseDuration, atLeast(1000), 'a duration (e.g. 30s, 2m)') ?? DEFAULT_LIMITS.stuckAfterMs,
  };
  if (issues.length) throw new ConfigError(issues);
  return limits;
}

let current: Limits | undefined;
/** The process's limits (from process.env, read on first use, unless set by useLimits). */
export function limits(): Limits {
  return (current ??= loadLimits());
}

/** Make these the process's limits (the service reads them from the environment it is given). */
export function useLimits(l: Limits): void {
  current = l;
}
