/** Pure parts of large values by reference: the ref shape, the value walk, the limits from the environment. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { payloadLimitsFromEnv } from '../../src/payloads/config.js';
import { inspectValue, isPayloadRef } from '../../src/payloads/refs.js';

const SHA = 'a'.repeat(64);

describe('refs and the value walk', () => {
  it('a ref is exactly {$ref, sha256 (64 hex), bytes}', () => {
    expect(isPayloadRef({ $ref: 'obj:b/x', sha256: SHA, bytes: 3 })).toBe(true);
    expect(isPayloadRef({ $ref: 'obj:b/x', sha256: SHA, bytes: 3, extra: 1 })).toBe(false);
    expect(isPayloadRef({ $ref: 'obj:b/x', sha256: 'nothex', bytes: 3 })).toBe(false);
    expect(isPayloadRef({ $ref: 'obj:b/x', sha256: SHA })).toBe(false);
    expect(isPayloadRef([{ $ref: 'obj:b/x', sha256: SHA, bytes: 3 }])).toBe(false);
  });

  it('finds a ref shape at any depth, and none where there is none', () => {
    expect(inspectValue({ a: [{ b: { $ref: 'x', sha256: SHA, bytes: 1 } }] }, 100).hasRefShape).toBe(true);
    expect(inspectValue({ a: [{ b: { $ref: 'x' } }] }, 100).hasRefShape).toBe(false);
  });

  it('walks a value nested 4,500 levels deep without overflowing, and says where it passes the limit', () => {
    const deep = JSON.parse('{"a":{"b":' + '['.repeat(4500) + ']'.repeat(4500) + '}}');
    const shape = inspectValue(deep, 100);
    expect(shape.tooDeepAt).toBe('a.b[0][0][0][0][0]'); // the path is spelled out for the first levels only
    expect(inspectValue(deep, 5000)).toMatchObject({ depth: 4502 });
    expect(inspectValue(deep, 5000).tooDeepAt).toBeUndefined();
  });

  it('its size bound is never below the JSON size (so a value judged small is small)', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => inspectValue(v, 1000).maxJsonBytes >= Buffer.byteLength(JSON.stringify(v) ?? '')), { numRuns: 1000 });
    fc.assert(fc.property(fc.string({ unit: 'grapheme' }), (v) => inspectValue(v, 10).maxJsonBytes >= Buffer.byteLength(JSON.stringify(v))), { numRuns: 1000 });
  });
});

describe('payload limits from the environment', () => {
  it('defaults: 64 KB inline, 64 MB at most, 100 levels', () => {
    expect(payloadLimitsFromEnv({})).toEqual({ inlineMaxBytes: 65536, maxBytes: 67108864, maxNesting: 100 });
  });

  it('reads the variables, and refuses bad values naming the variable', () => {
    expect(payloadLimitsFromEnv({ SMARTSPEC_INLINE_MAX_BYTES: '1024', SMARTSPEC_PAYLOAD_MAX_BYTES: '2048', SMARTSPEC_MAX_NESTING: '8' })).toEqual({ inlineMaxBytes: 1024, maxBytes: 2048, maxNesting: 8 });
    expect(() => payloadLimitsFromEnv({ SMARTSPEC_PAYLOAD_MAX_BYTES: '64MB' })).toThrow(/SMARTSPEC_PAYLOAD_MAX_BYTES: expected a positive integer, got '64MB'/);
    expect(() => payloadLimitsFromEnv({ SMARTSPEC_MAX_NESTING: '0' })).toThrow(/SMARTSPEC_MAX_NESTING/);
    expect(() => payloadLimitsFromEnv({ SMARTSPEC_INLINE_MAX_BYTES: '5000', SMARTSPEC_PAYLOAD_MAX_BYTES: '4000' })).toThrow(/SMARTSPEC_INLINE_MAX_BYTES: must not exceed SMARTSPEC_PAYLOAD_MAX_BYTES/);
  });
});
