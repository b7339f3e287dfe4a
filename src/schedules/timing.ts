/**
 * When a schedule fires: pure functions of the schedule and a clock reading,
 * no I/O, so tests drive them with any instant. Cron expressions (with a time
 * zone, DST included) are croner's; `every` counts whole intervals from the
 * schedule's anchor, so every scheduler computes the same instants.
 */
import { Cron } from 'croner';
import { parseDuration } from '../limits.js';

export type Catchup = 'none' | 'last' | 'all';
export const CATCHUP_POLICIES = ['none', 'last', 'all'] as const;

/** What decides the instants: a cron expression (in `timezone`, default UTC) or a fixed interval. */
export interface Timing {
  cron?: string;
  timezone?: string;
  /** Milliseconds between firings, counted from `anchorAt`. */
  everyMs?: number;
  /** ISO-8601: the origin of `every` (the schedule's creation). */
  anchorAt: string;
}

/**
 * A firing started more than this late (or more than half its interval late,
 * when that is shorter) was missed: every scheduler was down. Otherwise it is on time.
 */
export const LATE_AFTER_MS = 2000;
/** At most this many firings are enumerated per look, so a long outage under `all` is bounded per round. */
export const MAX_FIRINGS_PER_ROUND = 100;
/** The shortest `every`: the scheduler looks several times per second, not more. */
export const MIN_EVERY_MS = 1000;

/** `15m`, `1s`, `2h`: the interval in ms, or a message saying what is wrong. */
export function parseEvery(text: string): number | string {
  const ms = parseDuration(text);
  if (ms === undefined) return `'${text}' is not a duration such as 30s, 15m, 2h or 1d`;
  if (ms < MIN_EVERY_MS) return `'${text}' is shorter than the shortest interval, 1s`;
  return ms;
}

/** A cron expression (5 or 6 fields) and time zone croner accepts; otherwise a message saying what is wrong. */
export function checkCron(cron: string, timezone?: string): string | undefined {
  if (timezone !== undefined) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: timezone });
    } catch {
      return `'${timezone}' is not an IANA time zone (e.g. Europe/Paris, America/New_York, UTC)`;
    }
  }
  try {
    const next = cronOf(cron, timezone).nextRun(new Date());
    if (!next) return `cron '${cron}' never fires`;
  } catch (err) {
    return `cron '${cron}' is not valid: ${(err as Error).message}`;
  }
  return undefined;
}

function cronOf(cron: string, timezone?: string): Cron {
  // No callback: the object only computes instants; it never runs a timer.
  return new Cron(cron, { timezone: timezone ?? 'UTC', mode: '5-or-6-parts' });
}

/** The first firing strictly after `afterMs`, or undefined when there is none. */
export function nextFiring(timing: Timing, afterMs: number): number | undefined {
  if (timing.everyMs !== undefined) {
    const anchor = Date.parse(timing.anchorAt);
    if (afterMs < anchor) return anchor + timing.everyMs;
    return anchor + (Math.floor((afterMs - anchor) / timing.everyMs) + 1) * timing.everyMs;
  }
  const next = cronOf(timing.cron!, timing.timezone).nextRun(new Date(afterMs));
  return next ? next.getTime() : undefined;
}

/** The firings in (afterMs, untilMs], oldest first, at most `max`; `more` says whether some were left out. */
export function firingsBetween(timing: Timing, afterMs: number, untilMs: number, max = MAX_FIRINGS_PER_ROUND): { times: number[]; more: boolean } {
  const times: number[] = [];
  let t = nextFiring(timing, afterMs);
  while (t !== undefined && t <= untilMs) {
    if (times.length === max) return { times, more: true };
    times.push(t);
    t = nextFiring(timing, t);
  }
  return { times, more: false };
}

export interface Plan {
  /** Firings to start now, oldest first; `late` ones are catch-ups of missed firings. */
  fire: { at: number; late: boolean }[];
  /** Missed firings the policy leaves out (`count` is a lower bound when `atLeast`). */
  skipped?: { count: number; first: number; last: number; atLeast: boolean };
  /** The schedule's new cursor: every firing up to it is dealt with. */
  cursor: number;
}

/**
 * What to do at `nowMs` for a schedule whose firings up to `cursorMs` are dealt
 * with. On-time firings always start; missed ones (see LATE_AFTER_MS)
 * follow the policy: `none` skips them, `last` starts the newest of them unless
 * an on-time one starts anyway, `all` starts every one (MAX_FIRINGS_PER_ROUND
 * per round). Undefined: nothing due.
 */
export function plan(timing: Timing, cursorMs: number, nowMs: number, catchup: Catchup): Plan | undefined {
  const { times, more } = firingsBetween(timing, cursorMs, nowMs);
  if (times.length === 0) return undefined;
  const late = (t: number) => nowMs - t > Math.min(LATE_AFTER_MS, ((nextFiring(timing, t) ?? Infinity) - t) / 2);
  if (catchup === 'all') return { fire: times.map((at) => ({ at, late: late(at) })), cursor: times[times.length - 1] };
  // `none` and `last` skip what the enumeration left out too: their cursor goes to the newest firing.
  const newest = more ? lastFiringUpTo(timing, nowMs)! : times[times.length - 1];
  const onTime = more ? (late(newest) ? [] : [newest]) : times.filter((t) => !late(t));
  const missed = times.filter((t) => late(t));
  const fire = onTime.length === 0 && catchup === 'last' ? [newest] : onTime;
  const skippedTimes = missed.filter((t) => !fire.includes(t));
  const lastSkipped = more && !fire.includes(newest) ? newest : skippedTimes[skippedTimes.length - 1];
  const skipped = skippedTimes.length === 0 ? undefined : { count: skippedTimes.length, first: skippedTimes[0], last: lastSkipped, atLeast: more };
  return { fire: fire.map((at) => ({ at, late: late(at) })), ...(skipped ? { skipped } : {}), cursor: newest };
}

/** The newest firing at or before `nowMs` (after a long outage the enumeration stops early). */
function lastFiringUpTo(timing: Timing, nowMs: number): number | undefined {
  if (timing.everyMs !== undefined) {
    const anchor = Date.parse(timing.anchorAt);
    return nowMs < anchor + timing.everyMs ? undefined : anchor + Math.floor((nowMs - anchor) / timing.everyMs) * timing.everyMs;
  }
  return cronOf(timing.cron!, timing.timezone).previousRuns(1, new Date(nowMs + 1))[0]?.getTime();
}
