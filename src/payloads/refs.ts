/**
 * References to values kept in the object store. A record carries
 * `{ "$ref": "obj:<bucket>/<name>", "sha256": "<hex>", "bytes": N }` in place
 * of a value whose JSON is larger than the inline threshold; the record's
 * hash covers the ref and so the value's SHA-256.
 *
 * Invariant that makes refs unambiguous: a value kept inline in a record never
 * contains an object shaped like a ref, at any depth (such a value is stored
 * by reference instead). So every ref-shaped object in a record is one the
 * system wrote, and resolving one never looks inside the value it fetched.
 */
import { SmartSpecError } from '../errors.js';

export interface PayloadRef {
  $ref: string;
  sha256: string;
  bytes: number;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function isPayloadRef(v: unknown): v is PayloadRef {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const r = v as Record<string, unknown>;
  return typeof r.$ref === 'string' && typeof r.sha256 === 'string' && SHA256_HEX.test(r.sha256) && typeof r.bytes === 'number' && Object.keys(r).length === 3;
}

export interface ValueShape {
  /** Deepest nesting of arrays and objects (a scalar is 0, `{}` is 1). */
  depth: number;
  /** Whether an object shaped like a ref occurs anywhere inside. */
  hasRefShape: boolean;
  /**
   * An upper bound of the size of its JSON in bytes (a UTF-16 unit is at most
   * 6 bytes escaped), so that a small value is known small without serialising it.
   */
  maxJsonBytes: number;
}

/**
 * Walk a JSON value without recursion (a value nested thousands of levels deep
 * must not overflow the stack), stopping as soon as it nests deeper than `maxDepth`.
 * Returns the path to the first object past the limit when it does.
 */
export function inspectValue(value: unknown, maxDepth: number): ValueShape & { tooDeepAt?: string } {
  let depth = 0;
  let hasRefShape = false;
  let maxJsonBytes = 0;
  const stack: { v: unknown; d: number; path: string }[] = [{ v: value, d: 1, path: '' }];
  while (stack.length > 0) {
    const { v, d, path } = stack.pop()!;
    maxJsonBytes += 1; // the comma or colon before it
    if (typeof v === 'string') maxJsonBytes += 6 * v.length + 2;
    else if (v === null || typeof v !== 'object') maxJsonBytes += 24; // number, boolean, null
    if (v === null || typeof v !== 'object') continue;
    if (d > maxDepth) return { depth: d, hasRefShape, maxJsonBytes, tooDeepAt: path || '(top)' };
    if (d > depth) depth = d;
    if (!hasRefShape && isPayloadRef(v)) hasRefShape = true;
    maxJsonBytes += 2;
    if (Array.isArray(v)) for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], d: d + 1, path: d < 8 ? `${path}[${i}]` : path });
    else {
      for (const [k, child] of Object.entries(v)) {
        maxJsonBytes += 6 * k.length + 3;
        stack.push({ v: child, d: d + 1, path: d < 8 ? (path ? `${path}.${k}` : k) : path });
      }
    }
  }
  return { depth, hasRefShape, maxJsonBytes };
}

/** A value (input, signal payload) nests deeper than SMARTSPEC_MAX_NESTING. */
export class NestingTooDeepError extends SmartSpecError {
  constructor(what: string, maxNesting: number, at: string, code = 'INPUT_TOO_DEEP') {
    super(code, `${what} nests deeper than ${maxNesting} levels (at ${at}${at.length > 0 && at !== '(top)' ? '…' : ''}); flatten it or raise SMARTSPEC_MAX_NESTING`, {
      details: { maxNesting, at },
    });
  }
}

/** Refuse a value nested past the limit (INPUT_TOO_DEEP, naming where), before anything is written. */
export function assertNesting(value: unknown, maxNesting: number, what: string): void {
  const { tooDeepAt } = inspectValue(value, maxNesting);
  if (tooDeepAt !== undefined) throw new NestingTooDeepError(what, maxNesting, tooDeepAt);
}

/** A value is over SMARTSPEC_PAYLOAD_MAX_BYTES. `code` is OUTPUT_TOO_LARGE for step outputs. */
export class ValueTooLargeError extends SmartSpecError {
  constructor(what: string, bytes: number | undefined, maxBytes: number, code = 'PAYLOAD_TOO_LARGE') {
    super(code, `${what} is ${bytes === undefined ? 'more than' : `${bytes} bytes, over`} the limit of ${maxBytes} bytes (SMARTSPEC_PAYLOAD_MAX_BYTES)`, {
      details: { maxBytes, ...(bytes !== undefined ? { bytes } : {}) },
    });
  }
}

/** A ref whose object is missing, or whose content no longer has the recorded SHA-256. */
export class PayloadIntegrityError extends SmartSpecError {
  constructor(code: 'PAYLOAD_MISSING' | 'PAYLOAD_TAMPERED', message: string, ref: PayloadRef) {
    super(code, message, { details: { ref: ref.$ref, sha256: ref.sha256 } });
  }
}
