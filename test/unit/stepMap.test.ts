/**
 * The machine's step maps: a persistent map that behaves like a plain object
 * keyed by step id, at any size, without changing an earlier version; large
 * maps share structure between versions (an update copies a few dozen slots,
 * not every entry), which is what keeps a long run linear.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyStepMap, stepMapDelete, stepMapEntries, stepMapFrom, stepMapGet, stepMapHas, stepMapSet, stepMapSize, stepMapToObject, type StepMap } from '../../machines/stepMap.js';

const ids = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_-]{0,12}$/);

describe('step maps', () => {
  it('agree with a plain object for any sequence of sets and deletes, and never change an earlier version', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), ids, fc.integer()), { maxLength: 300 }), (ops) => {
        let m: StepMap<number> = emptyStepMap();
        const model: Record<string, number> = {};
        const versions: [StepMap<number>, Record<string, number>][] = [];
        for (const [del, k, v] of ops) {
          if (del) { m = stepMapDelete(m, k); delete model[k]; } else { m = stepMapSet(m, k, v); model[k] = v; }
          versions.push([m, { ...model }]);
        }
        for (const [version, expected] of versions) {
          expect(stepMapToObject(version)).toEqual(expected);
          expect(stepMapSize(version)).toBe(Object.keys(expected).length);
        }
        for (const k of Object.keys(model)) {
          expect(stepMapHas(m, k)).toBe(true);
          expect(stepMapGet(m, k)).toBe(model[k]);
        }
        expect(stepMapHas(m, 'absent-key-#')).toBe(false);
      }),
      { numRuns: 60 },
    );
  });

  it('holds thousands of entries, and a step named like an internal key is just a key', () => {
    const n = 10_000;
    const m = stepMapFrom(Array.from({ length: n }, (_, i) => [`s${i}`, i] as [string, number]));
    expect(stepMapSize(m)).toBe(n);
    expect(stepMapGet(m, 's9999')).toBe(9999);
    expect(stepMapEntries(m)).toHaveLength(n);
    const small = stepMapSet(stepMapSet(emptyStepMap<string>(), 'trie', 'a'), 'size', 'b');
    expect(stepMapToObject(small)).toEqual({ trie: 'a', size: 'b' });
    // JSON in and out (snapshots are stored as JSON): the same map
    const back = JSON.parse(JSON.stringify(m)) as StepMap<number>;
    expect(stepMapGet(back, 's1234')).toBe(1234);
    expect(stepMapGet(stepMapSet(back, 's1234', -1), 's1234')).toBe(-1);
  });

  it('an update of a large map touches a few dozen slots, not every entry', () => {
    const big = stepMapFrom(Array.from({ length: 5_000 }, (_, i) => [`s${i}`, { i }] as [string, { i: number }]));
    const next = stepMapSet(big, 'new', { i: -1 });
    // Counted by what is new in the JSON of the two versions: shared values are the same objects.
    const values = new Set(stepMapEntries(big).map(([, v]) => v));
    const reused = stepMapEntries(next).filter(([, v]) => values.has(v)).length;
    expect(reused).toBe(5_000);
    const fresh = (node: unknown, old: Set<unknown>): number =>
      old.has(node) || node === null || typeof node !== 'object' ? 0 : 1 + Object.values(node as object).reduce<number>((a, c) => a + fresh(c, old), 0);
    const oldNodes = new Set<unknown>();
    const collect = (node: unknown) => { if (node && typeof node === 'object' && !oldNodes.has(node)) { oldNodes.add(node); Object.values(node).forEach(collect); } };
    collect(big);
    // The new root, one node per level of the trie, one bucket: a handful of new objects, not thousands.
    expect(fresh(next, oldNodes)).toBeLessThan(10);
  });
});
