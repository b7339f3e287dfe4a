/** The histories a process keeps for its own resumes: kept only while they end where the log does. */
import { describe, expect, it } from 'vitest';
import { RecentHistories } from '../../src/log/recentHistories.js';
import type { LogRecord, StoredRecord } from '../../src/log/records.js';

const rec = (seq: number, type = 'StepCompleted'): StoredRecord => ({ seq, record: { type, executionId: 'x', hash: `h${seq}` } as unknown as LogRecord });

describe('RecentHistories', () => {
  it('keeps a history appended here from its start, and serves it up to its last record', () => {
    const h = new RecentHistories();
    h.appended('x', 0, rec(3, 'ExecutionStarted'));
    h.appended('x', 3, rec(7));
    h.appended('x', 7, rec(9));
    expect(h.range('x', 0, 9)?.map((r) => r.seq)).toEqual([3, 7, 9]);
    expect(h.range('x', 5, 9)?.map((r) => r.seq)).toEqual([7, 9]);
  });

  it('misses when the log ends elsewhere (another process appended), and forgets a history appended after another record', () => {
    const h = new RecentHistories();
    h.appended('x', 0, rec(3, 'ExecutionStarted'));
    h.appended('x', 3, rec(7));
    expect(h.range('x', 0, 8)).toBeUndefined(); // the log's last is 8: written elsewhere
    h.appended('x', 8, rec(9)); // appended after a record it never saw
    expect(h.range('x', 0, 9)).toBeUndefined();
  });

  it('keeps a history read whole only from its ExecutionStarted', () => {
    const h = new RecentHistories();
    h.read('a', [rec(5), rec(6)]);
    expect(h.range('a', 0, 6)).toBeUndefined();
    h.read('b', [rec(1, 'ExecutionStarted'), rec(2)]);
    expect(h.range('b', 0, 2)?.length).toBe(2);
  });

  it('hands out copies: a caller changing what it got does not change what is kept', () => {
    const h = new RecentHistories();
    h.read('b', [rec(1, 'ExecutionStarted'), rec(2)]);
    h.range('b', 0, 2)!.pop();
    expect(h.range('b', 0, 2)?.length).toBe(2);
  });

  it('does not keep a history past 1,000 records (those resume from snapshots)', () => {
    const h = new RecentHistories();
    h.appended('x', 0, rec(1, 'ExecutionStarted'));
    for (let s = 2; s <= 1_001; s++) h.appended('x', s - 1, rec(s));
    expect(h.range('x', 0, 1_000)).toBeUndefined();
  });
});
