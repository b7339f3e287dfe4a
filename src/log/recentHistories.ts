/**
 * The histories this process wrote or read whole lately, by execution, so that
 * a resume on the worker that ran an execution (the usual case with `serve`)
 * does not read back what it has just written: Temporal's workers keep a
 * "sticky" cache of workflow histories for the same reason. A history is kept
 * only while every record appended to it went through this process, and used
 * only when it ends at the sequence the log says is the execution's last, so
 * a record written elsewhere makes it miss (and it is read from the stream).
 * Audits (replay, the CLI's reads) always read the stream.
 */
import { LRUCache } from 'lru-cache';
import type { StoredRecord } from './records.js';

/** Longer histories are resumed from snapshots (src/log/snapshots.ts), not kept whole. */
const MAX_RECORDS_PER_HISTORY = 1_000;
/** Records kept in all: about 12 MB at the ~600 bytes a record takes. */
const MAX_RECORDS = 20_000;

export class RecentHistories {
  private readonly kept = new LRUCache<string, StoredRecord[]>({ maxSize: MAX_RECORDS, sizeCalculation: (h) => Math.max(1, h.length) });

  /** A history read whole, from its ExecutionStarted. */
  read(executionId: string, records: StoredRecord[]): void {
    if (records[0]?.record.type !== 'ExecutionStarted' || records.length > MAX_RECORDS_PER_HISTORY) return;
    this.kept.set(executionId, records.slice());
  }

  /** A record appended after `prevSeq` (0: the first). Kept when the history kept ends there; else forgotten. */
  appended(executionId: string, prevSeq: number, stored: StoredRecord): void {
    if (prevSeq === 0) {
      if (stored.record.type === 'ExecutionStarted') this.kept.set(executionId, [stored]);
      return;
    }
    const history = this.kept.peek(executionId);
    if (!history) return;
    if (history[history.length - 1].seq !== prevSeq || history.length >= MAX_RECORDS_PER_HISTORY) {
      this.kept.delete(executionId);
      return;
    }
    history.push(stored);
    this.kept.set(executionId, history); // its size changed
  }

  /** Records `fromSeq` to `toSeq` (the history's last record, as the log says), when kept. */
  range(executionId: string, fromSeq: number, toSeq: number): StoredRecord[] | undefined {
    const history = this.kept.get(executionId);
    if (!history || history[history.length - 1].seq !== toSeq) return undefined;
    if (fromSeq <= history[0].seq) return history.slice();
    const i = history.findIndex((r) => r.seq >= fromSeq);
    return i < 0 ? [] : history.slice(i);
  }
}
