/**
 * The hash chain of an execution's log, checked in the browser
 * (src/log/records.ts): each record's hash is SHA-256 over the previous
 * record's hash and the record's RFC 8785 canonical JSON without `hash`.
 * The page does not take the server's word for it: it recomputes every link.
 */
import canonicalizeModule from 'canonicalize';
import type { EventRecord } from './records.js';

// CommonJS (module.exports is the function) typed as an ES default export: callable however it is resolved.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined;

export interface ChainResult {
  /** 'unavailable': the browser offers SHA-256 only in a secure context (https, or localhost). */
  status: 'verified' | 'broken' | 'unavailable' | 'empty';
  checked: number;
  /** seqs whose recorded hash is not the computed one */
  broken: number[];
}

const hex = (buf: ArrayBuffer) => [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join('');

export async function verifyChain(records: EventRecord[]): Promise<ChainResult> {
  if (!records.length) return { status: 'empty', checked: 0, broken: [] };
  if (!globalThis.crypto?.subtle) return { status: 'unavailable', checked: 0, broken: [] };
  const encoder = new TextEncoder();
  const broken: number[] = [];
  let prev = '';
  for (const { seq: _seq, hash, ...body } of records) {
    const computed = hex(await crypto.subtle.digest('SHA-256', encoder.encode(prev + (canonicalize(body) ?? ''))));
    if (computed !== hash) broken.push(_seq);
    prev = hash;
  }
  return { status: broken.length ? 'broken' : 'verified', checked: records.length, broken };
}
