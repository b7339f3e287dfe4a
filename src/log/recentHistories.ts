/**
 * The histories this process wrote lately, by execution, so that a resume or
 * a take-over on the worker that ran an execution (the usual case with
 * `serve`) does not read back what it has just written: Temporal's workers keep
 * a "sticky" cache of workflow histories for the same reason. A history is
 * kept from its ExecutionStarted while every record appended to it went
 * through this process, as the bytes that went to the stream (parsed afresh for
 * each reader), and used only when it ends at the sequence the log says is the
 * execution's last, so a record written elsewhere makes it miss (and it is read
 * from the stream). Audits (replay, the CLI's reads) always read the stream.
 */
import { LRUCache } from 'lru-cache';
import type { LogRecord, StoredRecord } from './records.js';

/** Longer histories are resumed from snapshots (src/log/snapshots.ts), not kept whole. */
const MAX_RECORDS_PER_HISTORY = 1_000;
/**
 * Bytes kept in all: about 500 fork5 executions' histories. Records kept a while outlive the young
 * generation and are promoted; once dropped they stay in the old generation until a full GC, so a
 * busy process's RSS grows by several times what is kept (10,000 executions started in one
 * process: about 55 MB more RSS with 4 MB kept, 100 MB with 16 MB; after a full GC, nothing).
 */
const MAX_BYTES = 4 * 1024 * 1024;

const decoder = new TextDecoder();

interface Kept { seqs: number[]; data: Uint8Array[]; bytes: number }

export class RecentHistories {
  private readonly kept = new LRUCache<string, Kept>({ maxSize: MAX_BYTES });

  /** A record appended after `prevSeq` (0: the first), as stored (`data`). Kept when the history kept ends there; else forgotten. */
  appended(executionId: string, prevSeq: number, seq: number, data: Uint8Array, type: LogRecord['type']): void {
    if (prevSeq === 0) {
      if (type === 'ExecutionStarted') this.kept.set(executionId, { seqs: [seq], data: [data], bytes: data.byteLength }, { size: Math.max(1, data.byteLength) });
      return;
    }
    const history = this.kept.peek(executionId);
    if (!history) return;
    if (history.seqs[history.seqs.length - 1] !== prevSeq || history.seqs.length >= MAX_RECORDS_PER_HISTORY) {
      this.kept.delete(executionId);
      return;
    }
    history.seqs.push(seq);
    history.data.push(data);
    history.bytes += data.byteLength;
    this.kept.set(executionId, history, { size: history.bytes }); // its size changed
  }

  /** Where a kept history starts in the stream (its ExecutionStarted): known without asking anyone. */
  startSeq(executionId: string): number | undefined {
    return this.kept.peek(executionId)?.seqs[0];
  }

  /** Records `fromSeq` to `toSeq` (the history's last record, as the log says), when kept. */
  range(executionId: string, fromSeq: number, toSeq: number): StoredRecord[] | undefined {
    const history = this.kept.get(executionId);
    if (!history || history.seqs[history.seqs.length - 1] !== toSeq) return undefined;
    const out: StoredRecord[] = [];
    for (let i = 0; i < history.seqs.length; i++) {
      if (history.seqs[i] >= fromSeq) out.push({ seq: history.seqs[i], record: JSON.parse(decoder.decode(history.data[i])) as LogRecord });
    }
    return out;
  }
}
