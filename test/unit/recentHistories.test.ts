/** The histories a process keeps for its own resumes: kept only while they end where the log does. */
import { describe, expect, it } from 'vitest';
import { RecentHistories } from '../../src/log/recentHistories.js';

const json = (seq: number, type = 'StepCompleted') => new TextEncoder().encode(JSON.stringify({ type, executionId: 'x', hash: `h${seq}` }));
const append = (h: RecentHistories, prev: number, seq: number, type = 'StepCompleted') => h.appended('x', prev, seq, json(seq, type), type as never);

describe('RecentHistories', () => {
  it('keeps a history appended here from its start, and serves it up to its last record, parsed afresh', () => {
    const h = new RecentHistories();
    append(h, 0, 3, 'ExecutionStarted');
    append(h, 3, 7);
    append(h, 7, 9);
    expect(h.range('x', 0, 9)?.map((r) => r.seq)).toEqual([3, 7, 9]);
    expect(h.range('x', 0, 9)?.[1].record).toMatchObject({ type: 'StepCompleted', hash: 'h7' });
    expect(h.range('x', 5, 9)?.map((r) => r.seq)).toEqual([7, 9]);
    expect(h.startSeq('x')).toBe(3); // where its ExecutionStarted is, with no read
    // A reader changing what it got does not change what the next one gets.
    (h.range('x', 0, 9)![0].record as { hash: string }).hash = 'changed';
    expect(h.range('x', 0, 9)![0].record.hash).toBe('h3');
  });

  it('misses when the log ends elsewhere (another process appended), and forgets a history appended after another record', () => {
    const h = new RecentHistories();
    append(h, 0, 3, 'ExecutionStarted');
    append(h, 3, 7);
    expect(h.range('x', 0, 8)).toBeUndefined(); // the log's last is 8: written elsewhere
    append(h, 8, 9); // appended after a record it never saw
    expect(h.range('x', 0, 9)).toBeUndefined();
  });

  it('keeps nothing of a history whose start it did not write', () => {
    const h = new RecentHistories();
    append(h, 5, 6);
    append(h, 0, 1); // a first record that is not ExecutionStarted
    expect(h.range('x', 0, 6)).toBeUndefined();
    expect(h.range('x', 0, 1)).toBeUndefined();
    expect(h.startSeq('x')).toBeUndefined();
  });

  it('does not keep a history past 1,000 records (those resume from snapshots)', () => {
    const h = new RecentHistories();
    append(h, 0, 1, 'ExecutionStarted');
    for (let s = 2; s <= 1_001; s++) append(h, s - 1, s);
    expect(h.range('x', 0, 1_001)).toBeUndefined();
  });
});
