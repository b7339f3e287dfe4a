import { describe, expect, it } from 'vitest';
import { backoffDelayMs, parseRetryAfter } from '../../../src/llm/index.js';

const h = (o: Record<string, string>) => new Headers(o);

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('reads seconds, HTTP dates and retry-after-ms (which wins)', () => {
    expect(parseRetryAfter(h({ 'retry-after': '2' }), now)).toBe(2000);
    expect(parseRetryAfter(h({ 'retry-after': '0.5' }), now)).toBe(500);
    expect(parseRetryAfter(h({ 'retry-after': 'Wed, 01 Jan 2025 00:00:07 GMT' }), now)).toBe(7000);
    expect(parseRetryAfter(h({ 'retry-after': '9', 'retry-after-ms': '250' }), now)).toBe(250);
  });
  it('ignores absent or unparseable values and never goes negative', () => {
    expect(parseRetryAfter(h({}), now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
    expect(parseRetryAfter(h({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(parseRetryAfter(h({ 'retry-after': 'Tue, 31 Dec 2024 23:59:00 GMT' }), now)).toBe(0);
  });
});

describe('backoffDelayMs', () => {
  const policy = { initialDelayMs: 100, factor: 2, maxDelayMs: 500, jitter: 0.25 };
  it('doubles per attempt up to the cap', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelayMs(policy, n, () => 0))).toEqual([100, 200, 400, 500, 500]);
  });
  it('takes at most the jitter fraction off', () => {
    expect(backoffDelayMs(policy, 2, () => 0.999)).toBeGreaterThanOrEqual(150);
    expect(backoffDelayMs(policy, 2, () => 0.999)).toBeLessThan(200);
  });
});
