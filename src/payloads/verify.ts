/**
 * Replay's audit of values kept by reference. The hash chain covers each
 * ref, and so the SHA-256 of the value it names; here every ref in the log is
 * fetched and its content hashed again, so an object replaced in the bucket
 * fails the replay just as an edited record does.
 */
import type { StoredRecord } from '../log/records.js';
import { replayExecution, type ReplayReport } from '../log/replay.js';
import { isPayloadRef, type PayloadRef } from './refs.js';
import type { PayloadStore } from './store.js';

export interface PayloadCheck {
  seq: number;
  ref: string;
  ok: boolean;
  code?: string;
  error?: string;
}

/** Fields of a record that never hold refs: what the writer, not a step or a client, put there. */
const NOT_VALUES = new Set(['type', 'executionId', 'workflowId', 'at', 'state', 'hash', 'definition']);

/** Every ref in a record's values (inline values hold none: see refs.ts). */
export function refsIn(record: object): PayloadRef[] {
  const found: PayloadRef[] = [];
  const walk = (v: unknown) => {
    if (v === null || typeof v !== 'object') return;
    if (isPayloadRef(v)) found.push(v);
    else for (const child of Array.isArray(v) ? v : Object.values(v)) walk(child);
  };
  for (const [k, v] of Object.entries(record)) if (!NOT_VALUES.has(k)) walk(v);
  return found;
}

export async function verifyPayloads(records: StoredRecord[], payloads: PayloadStore): Promise<PayloadCheck[]> {
  const checks: PayloadCheck[] = [];
  const seen = new Set<string>();
  for (const { seq, record } of records) {
    for (const ref of refsIn(record)) {
      const key = `${ref.$ref}:${ref.sha256}`;
      if (seen.has(key)) continue;
      seen.add(key);
      try {
        await payloads.verify(ref);
        checks.push({ seq, ref: ref.$ref, ok: true });
      } catch (err) {
        const e = err as Error & { code?: string };
        checks.push({ seq, ref: ref.$ref, ok: false, ...(e.code ? { code: e.code } : {}), error: e.message });
      }
    }
  }
  return checks;
}

/** Replay (hash chain, every state re-derived) plus every stored value checked against its ref. */
export async function replayWithPayloads(executionId: string, records: StoredRecord[], payloads: PayloadStore): Promise<ReplayReport & { payloads: PayloadCheck[] }> {
  const report = replayExecution(executionId, records);
  const checks = await verifyPayloads(records, payloads);
  return { ...report, ok: report.ok && checks.every((c) => c.ok), payloads: checks };
}
