/** Schedule timing with a clock the test sets: cron in a time zone (DST included), intervals, catch-up plans. */
import { describe, expect, it } from 'vitest';
import { checkCron, firingsBetween, nextFiring, parseEvery, plan, type Timing } from '../../../src/schedules/timing.js';

const t = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('cron with a time zone', () => {
  const weekdays9: Timing = { cron: '0 9 * * 1-5', timezone: 'Europe/Paris', anchorAt: '2026-01-01T00:00:00Z' };

  it('fires at 09:00 Paris time: 08:00Z in winter, 07:00Z in summer', () => {
    expect(iso(nextFiring(weekdays9, t('2026-01-02T08:00:00Z')))).toBe('2026-01-05T08:00:00.000Z'); // Friday after 9:00 → Monday
    expect(iso(nextFiring(weekdays9, t('2026-01-05T07:59:59Z')))).toBe('2026-01-05T08:00:00.000Z');
    expect(iso(nextFiring(weekdays9, t('2026-03-27T09:00:00Z')))).toBe('2026-03-30T07:00:00.000Z'); // after the spring change (29 March)
  });

  it('fires once on the days the clocks change', () => {
    const nightly: Timing = { cron: '30 2 * * *', timezone: 'Europe/Paris', anchorAt: '2026-01-01T00:00:00Z' };
    // 29 March: 02:30 does not exist in Paris; 25 October: it exists twice. One firing per day either way.
    expect(firingsBetween(nightly, t('2026-03-28T12:00:00Z'), t('2026-03-30T12:00:00Z')).times).toHaveLength(2);
    expect(firingsBetween(nightly, t('2026-10-24T12:00:00Z'), t('2026-10-26T12:00:00Z')).times).toHaveLength(2);
    expect(iso(nextFiring(nightly, t('2026-10-24T12:00:00Z')))).toBe('2026-10-25T00:30:00.000Z'); // 02:30 CEST
  });

  it('takes six fields (seconds)', () => {
    const everyTen: Timing = { cron: '*/10 * * * * *', anchorAt: '2026-01-01T00:00:00Z' };
    expect(iso(nextFiring(everyTen, t('2026-01-01T00:00:01Z')))).toBe('2026-01-01T00:00:10.000Z');
  });

  it('refuses a bad expression or zone, naming it', () => {
    expect(checkCron('0 9 * * 1-5', 'Europe/Paris')).toBeUndefined();
    expect(checkCron('61 * * * *')).toMatch(/cron '61 \* \* \* \*' is not valid/);
    expect(checkCron('0 9 * * *', 'Mars/Olympus')).toMatch(/'Mars\/Olympus' is not an IANA time zone/);
    expect(checkCron('0 0 30 2 *')).toMatch(/never fires|not valid/);
  });
});

describe('every', () => {
  const every15m: Timing = { everyMs: 15 * 60_000, anchorAt: '2026-01-01T10:07:00Z' };

  it('counts whole intervals from the anchor, so every scheduler computes the same instants', () => {
    expect(iso(nextFiring(every15m, t('2026-01-01T10:07:00Z')))).toBe('2026-01-01T10:22:00.000Z');
    expect(iso(nextFiring(every15m, t('2026-01-01T10:21:59.999Z')))).toBe('2026-01-01T10:22:00.000Z');
    expect(iso(nextFiring(every15m, t('2026-01-01T10:22:00Z')))).toBe('2026-01-01T10:37:00.000Z');
  });

  it('parses durations and refuses what is not one', () => {
    expect(parseEvery('15m')).toBe(900_000);
    expect(parseEvery('1s')).toBe(1000);
    expect(parseEvery('500ms')).toMatch(/shorter than the shortest interval/);
    expect(parseEvery('often')).toMatch(/'often' is not a duration/);
  });
});

describe('plan: what is due at an instant', () => {
  const everySecond: Timing = { everyMs: 1000, anchorAt: '2026-01-01T00:00:00Z' };
  const cursor = t('2026-01-01T00:00:00Z');

  it('nothing before the first firing; the firing itself when it is due', () => {
    expect(plan(everySecond, cursor, t('2026-01-01T00:00:00.999Z'), 'none')).toBeUndefined();
    expect(plan(everySecond, cursor, t('2026-01-01T00:00:01.100Z'), 'none')).toEqual({ fire: [{ at: t('2026-01-01T00:00:01Z'), late: false }], cursor: t('2026-01-01T00:00:01Z') });
  });

  // After an outage of 5.7 s: firings at +1 … +5 are all missed (+5 is 0.7 s late, over half its interval).
  const now = t('2026-01-01T00:00:05.700Z');
  const at = (s: number) => t(`2026-01-01T00:00:0${s}Z`);

  it('none: skips every missed firing', () => {
    expect(plan(everySecond, cursor, now, 'none')).toEqual({ fire: [], skipped: { count: 5, first: at(1), last: at(5), atLeast: false }, cursor: at(5) });
  });

  it('last: starts the newest missed firing and skips the others', () => {
    expect(plan(everySecond, cursor, now, 'last')).toEqual({ fire: [{ at: at(5), late: true }], skipped: { count: 4, first: at(1), last: at(4), atLeast: false }, cursor: at(5) });
  });

  it('all: starts every missed firing, oldest first', () => {
    expect(plan(everySecond, cursor, now, 'all')).toEqual({ fire: [1, 2, 3, 4, 5].map((s) => ({ at: at(s), late: true })), cursor: at(5) });
  });

  it('a firing on time is started under every policy, and ends the catch-up of `last`', () => {
    const onTime = t('2026-01-01T00:00:05.200Z');
    expect(plan(everySecond, cursor, onTime, 'last')!.fire).toEqual([{ at: at(5), late: false }]);
    expect(plan(everySecond, cursor, onTime, 'none')!.fire).toEqual([{ at: at(5), late: false }]);
  });

  it('a long outage is bounded per round; `none` and `last` jump to now', () => {
    const dayLater = t('2026-01-02T00:00:00.700Z');
    const last = plan(everySecond, cursor, dayLater, 'last')!;
    expect(last.fire).toEqual([{ at: t('2026-01-02T00:00:00Z'), late: true }]);
    expect(last.cursor).toBe(t('2026-01-02T00:00:00Z'));
    expect(last.skipped!.atLeast).toBe(true);
    const all = plan(everySecond, cursor, dayLater, 'all')!;
    expect(all.fire).toHaveLength(100);
    expect(all.cursor).toBe(t('2026-01-01T00:01:40Z'));
  });
});
