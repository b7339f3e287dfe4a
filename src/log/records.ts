/**
 * Event-log records (ARCHITECTURE.md, "The event log") and their hash chain:
 * each record's `hash` is SHA-256 over the previous record's hash and this
 * record's canonical JSON (RFC 8785), so a deleted, edited or reordered record
 * is detectable.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { WorkflowEvent } from '../../machines/events.js';

export interface RecordEnvelope {
  executionId: string;
  workflowId: string;
  /** ISO-8601 time of the transition. */
  at: string;
  /** The XState state value after the transition. */
  state: unknown;
  hash: string;
}

export type LogRecord = WorkflowEvent & RecordEnvelope;

/** A record with its position in the stream. */
export interface StoredRecord { seq: number; record: LogRecord }

// RFC 8785 canonical JSON; the package is CommonJS with a mistyped default export.
const canonicalize: (value: unknown) => string | undefined = createRequire(import.meta.url)('canonicalize');

export const GENESIS_HASH = '';

export function hashRecord(prevHash: string, record: Omit<LogRecord, 'hash'> | LogRecord): string {
  const { hash: _ignored, ...body } = record as LogRecord;
  return createHash('sha256').update(prevHash).update(canonicalize(body) ?? '').digest('hex');
}

/**
 * Hash a new record and give the JSON to store: its canonical form with the
 * hash added last, so the body is serialised once.
 */
export function sealRecord(prevHash: string, body: Omit<LogRecord, 'hash'>): { hash: string; json: string } {
  const canonical = canonicalize(body)!;
  const hash = createHash('sha256').update(prevHash).update(canonical).digest('hex');
  return { hash, json: `${canonical.slice(0, -1)},"hash":"${hash}"}` };
}

export interface ChainBreak { seq: number; index: number; expected: string; found: string }

/** Check the hash chain of an execution's records, in order. */
export function verifyChain(records: StoredRecord[]): ChainBreak[] {
  const breaks: ChainBreak[] = [];
  let prev = GENESIS_HASH;
  records.forEach(({ seq, record }, index) => {
    const expected = hashRecord(prev, record);
    if (expected !== record.hash) breaks.push({ seq, index, expected, found: record.hash });
    prev = record.hash;
  });
  return breaks;
}
