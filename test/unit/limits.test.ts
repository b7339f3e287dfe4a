/**
 * The bounds (issue 9): a definition over the step limit is refused at once
 * with INVALID_DEFINITION naming the count and the limit; the limits come
 * from the environment, and a bad value names its variable.
 */
import { describe, expect, it } from 'vitest';
import { validateDefinition } from '../../src/definition/validate.js';
import { DefinitionError } from '../../src/errors.js';
import { DEFAULT_LIMITS, loadLimits, parseByteSize, parseDuration } from '../../src/limits.js';

const steps = (n: number, extra: (i: number) => object = () => ({})) =>
  Array.from({ length: n }, (_, i) => ({ id: `s${i}`, type: 'transform', value: i, ...extra(i) }));

function refusal(doc: unknown, options?: { maxSteps?: number }): DefinitionError {
  try {
    validateDefinition(doc, options);
  } catch (err) {
    expect(err).toBeInstanceOf(DefinitionError);
    return err as DefinitionError;
  }
  throw new Error('the definition should have been refused');
}

describe('steps per definition', () => {
  it(`refuses more than the default limit (${DEFAULT_LIMITS.maxSteps.toLocaleString('en')}), naming the count and the limit`, () => {
    const err = refusal({ id: 'big', steps: steps(DEFAULT_LIMITS.maxSteps + 1) });
    expect(err.code).toBe('INVALID_DEFINITION');
    expect(err.issues).toEqual([{ path: 'steps', message: '5,001 steps is more than the limit of 5,000 per definition (SMARTSPEC_MAX_STEPS)' }]);
  });

  it('refuses before looking at any step: only the count is reported, however broken the steps are', () => {
    const err = refusal({ id: 'big', steps: steps(20_000, (i) => (i % 2 ? { type: 'nope' } : { id: 'dup' })) });
    expect(err.issues.map((i) => i.path)).toEqual(['steps']);
    expect(err.message).toContain('20,000 steps');
  });

  it('takes the limit as an option; exactly the limit is accepted', () => {
    expect(validateDefinition({ id: 'w', steps: steps(3) }, { maxSteps: 3 }).steps).toHaveLength(3);
    expect(refusal({ id: 'w', steps: steps(4) }, { maxSteps: 3 }).message).toContain('4 steps is more than the limit of 3');
  });
});

describe('limits from the environment', () => {
  it('defaults: 5,000 steps, 50,000 records per execution, a 5 GiB event log, no retention', () => {
    expect(loadLimits({})).toEqual({ maxSteps: 5000, historyLimit: 50_000, streamMaxBytes: 5 * 1024 ** 3, retentionIntervalMs: 300_000, stuckAfterMs: 30_000 });
  });

  it('reads every variable', () => {
    expect(
      loadLimits({ SMARTSPEC_MAX_STEPS: '200', SMARTSPEC_HISTORY_LIMIT: '1000', SMARTSPEC_STREAM_MAX_BYTES: '500MB', SMARTSPEC_RETENTION: '30d', SMARTSPEC_RETENTION_INTERVAL: '30s', SMARTSPEC_STUCK_AFTER: '2m' }),
    ).toEqual({ maxSteps: 200, historyLimit: 1000, streamMaxBytes: 500_000_000, retentionMs: 30 * 86_400_000, retentionIntervalMs: 30_000, stuckAfterMs: 120_000 });
  });

  it('a bad value names its variable and what was expected', () => {
    expect(() => loadLimits({ SMARTSPEC_MAX_STEPS: 'lots', SMARTSPEC_RETENTION: '30 days', SMARTSPEC_STREAM_MAX_BYTES: '10' })).toThrow(
      /SMARTSPEC_MAX_STEPS: 'lots' is not a whole number; SMARTSPEC_STREAM_MAX_BYTES: must be at least 1,000,000; SMARTSPEC_RETENTION: '30 days' is not a duration/,
    );
    expect(() => loadLimits({ SMARTSPEC_HISTORY_LIMIT: '0' })).toThrow(/SMARTSPEC_HISTORY_LIMIT: must be at least 10/);
  });

  it('durations and sizes', () => {
    expect([parseDuration('30d'), parseDuration('12h'), parseDuration('90m'), parseDuration('45s'), parseDuration('500ms'), parseDuration('2w')]).toEqual([
      2_592_000_000, 43_200_000, 5_400_000, 45_000, 500, 1_209_600_000,
    ]);
    expect([parseDuration('30'), parseDuration('d'), parseDuration('-1d'), parseDuration('1y')]).toEqual([undefined, undefined, undefined, undefined]);
    expect([parseByteSize('1024'), parseByteSize('5GiB'), parseByteSize('500MB'), parseByteSize('1.5kb')]).toEqual([1024, 5 * 1024 ** 3, 500_000_000, 1500]);
    expect([parseByteSize('lots'), parseByteSize('5 GB!')]).toEqual([undefined, undefined]);
  });
});
