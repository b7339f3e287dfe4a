/**
 * Large values by reference: a value whose JSON is over the inline threshold
 * goes into the object store bucket `smartspec_payloads` (file storage), named
 * `<executionId>/<sha256>`, and the record carries a ref to it (refs.ts).
 * Reading a ref fetches the object and checks its SHA-256 against the ref, so
 * an object replaced after the fact is detected, not used.
 *
 * The bucket is created on first use: an execution that never carries a large
 * value never touches it.
 */
import { createHash } from 'node:crypto';
import { Objm, StorageType, setSha256Backend, type ObjectStore } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { SmartSpecError } from '../errors.js';
import { PAYLOADS_BUCKET } from '../nats/names.js';
import { DEFAULT_PAYLOAD_LIMITS, type PayloadLimits } from './config.js';
import { inspectValue, isPayloadRef, NestingTooDeepError, PayloadIntegrityError, ValueTooLargeError, type PayloadRef } from './refs.js';

// The object store hashes every chunk it writes and reads; node's hash is several times faster than the JS one.
setSha256Backend('native');

const REF_PREFIX = `obj:${PAYLOADS_BUCKET}/`;
/** Fewer, larger chunks: a 64 MB value is 128 publishes, not 512. The client caps it at max_payload. */
const CHUNK_BYTES = 512 * 1024;
/** Parsed values kept in memory, so later steps reading one output do not each fetch it. */
const CACHE_BYTES = 128 * 1024 * 1024;

export interface PayloadStoreOptions {
  limits?: PayloadLimits;
  replicas?: number;
}

/** What a value is, for error messages: "input", "output of step 'fetch'", "signal 'approve' payload". */
export interface PrepareOptions {
  what: string;
  /** Error codes for this kind of value (step outputs: OUTPUT_TOO_LARGE, OUTPUT_TOO_DEEP). */
  tooLargeCode?: string;
  tooDeepCode?: string;
}

export class PayloadStore {
  readonly limits: PayloadLimits;
  private bucket?: Promise<ObjectStore>;
  private readonly cache = new Map<string, { value: unknown; bytes: number }>();
  private cacheBytes = 0;

  constructor(private readonly nc: NatsConnection, private readonly options: PayloadStoreOptions = {}) {
    this.limits = options.limits ?? DEFAULT_PAYLOAD_LIMITS;
  }

  /**
   * The form of a value to put in a record: the value itself when it is small,
   * else a ref to it (stored now). Refuses a value nested deeper than the
   * limit or larger than the maximum, before anything is written.
   */
  async prepare(executionId: string, value: unknown, opts: PrepareOptions): Promise<unknown> {
    if (value === undefined || value === null || typeof value !== 'object') {
      if (typeof value !== 'string' || value.length <= this.limits.inlineMaxBytes / 6) return value; // 6 bytes per UTF-16 unit at most, escaped
    }
    const shape = inspectValue(value, this.limits.maxNesting);
    if (shape.tooDeepAt !== undefined) throw new NestingTooDeepError(opts.what, this.limits.maxNesting, shape.tooDeepAt, opts.tooDeepCode);
    if (!shape.hasRefShape && shape.maxJsonBytes <= this.limits.inlineMaxBytes) return value; // small for certain: not serialised here
    const json = JSON.stringify(value);
    // Cheap bound first: a string of n UTF-16 units is at most 3n bytes of UTF-8.
    const bytes = json.length * 3 <= this.limits.inlineMaxBytes ? json.length : Buffer.byteLength(json);
    if (bytes > this.limits.maxBytes) throw new ValueTooLargeError(opts.what, bytes, this.limits.maxBytes, opts.tooLargeCode);
    if (bytes <= this.limits.inlineMaxBytes && !shape.hasRefShape) return value;
    return this.put(executionId, Buffer.from(json));
  }

  /**
   * A value from a command (start input, signal payload): a ref to one of this
   * execution's own objects, with the recorded size and digest, stands as it is
   * (the edge stored it); anything else is prepared.
   */
  async accept(executionId: string, value: unknown, opts: PrepareOptions): Promise<unknown> {
    if (isPayloadRef(value) && this.nameOf(value)?.startsWith(`${executionId}/`)) {
      if (await this.holds(value).catch((err) => Promise.reject(unavailable(`could not look up ${value.$ref}`, err)))) return value;
      throw new PayloadIntegrityError('PAYLOAD_MISSING', `${opts.what} refers to ${value.$ref}, which the bucket does not hold with that size and SHA-256`, value);
    }
    return this.prepare(executionId, value, opts);
  }

  /** Store JSON bytes; content-addressed within the execution, so storing twice writes once. */
  async put(executionId: string, data: Buffer): Promise<PayloadRef> {
    const sha256 = createHash('sha256').update(data).digest('hex');
    const ref: PayloadRef = { $ref: `${REF_PREFIX}${executionId}/${sha256}`, sha256, bytes: data.length };
    try {
      if (await this.holds(ref)) return ref;
      const store = await this.store();
      await store.putBlob({ name: `${executionId}/${sha256}`, options: { max_chunk_size: CHUNK_BYTES } }, data, { timeout: 10_000 });
    } catch (err) {
      throw unavailable(`could not store a ${data.length}-byte value of execution '${executionId}'`, err);
    }
    return ref;
  }

  /** The value a ref stands for (anything else as it is). */
  async resolve(value: unknown): Promise<unknown> {
    return isPayloadRef(value) ? this.fetch(value) : value;
  }

  /**
   * Replace every ref inside a value the system composed (a summary, an
   * ExecutionCompleted output) with its value. Fetched values are not looked
   * into: by the invariant in refs.ts they hold no refs of ours.
   */
  async resolveDeep(value: unknown): Promise<unknown> {
    if (value === null || typeof value !== 'object') return value;
    if (isPayloadRef(value)) return this.fetch(value);
    if (Array.isArray(value)) return Promise.all(value.map((v) => this.resolveDeep(v)));
    const entries = await Promise.all(Object.entries(value).map(async ([k, v]) => [k, await this.resolveDeep(v)] as const));
    return Object.fromEntries(entries);
  }

  /** Fetch a ref's value, checking its size and SHA-256 against the ref. */
  async fetch(ref: PayloadRef): Promise<unknown> {
    const hit = this.cache.get(ref.$ref);
    if (hit) {
      this.cache.delete(ref.$ref); // most recently used last
      this.cache.set(ref.$ref, hit);
      return hit.value;
    }
    const data = await this.fetchVerified(ref);
    const value = JSON.parse(data.toString('utf8')) as unknown;
    if (ref.bytes <= CACHE_BYTES / 2) {
      this.cache.set(ref.$ref, { value, bytes: ref.bytes });
      this.cacheBytes += ref.bytes;
      for (const [key, e] of this.cache) {
        if (this.cacheBytes <= CACHE_BYTES) break;
        this.cache.delete(key);
        this.cacheBytes -= e.bytes;
      }
    }
    return value;
  }

  /** Read the object behind a ref and check it (never from the cache): replay's audit of each ref. */
  async verify(ref: PayloadRef): Promise<void> {
    await this.fetchVerified(ref);
  }

  private async fetchVerified(ref: PayloadRef): Promise<Buffer> {
    const name = this.nameOf(ref);
    if (!name) throw new PayloadIntegrityError('PAYLOAD_MISSING', `ref ${ref.$ref} does not name an object of bucket ${PAYLOADS_BUCKET}`, ref);
    let blob: Uint8Array | null;
    try {
      blob = await (await this.store()).getBlob(name);
    } catch (err) {
      // The client checks the object's own digest: chunks changed underneath it.
      if (/digests do not match/.test((err as Error).message)) throw tampered(ref, 'its chunks do not match the object store digest');
      throw unavailable(`could not read ${ref.$ref}`, err);
    }
    if (!blob) throw new PayloadIntegrityError('PAYLOAD_MISSING', `the object behind ${ref.$ref} is missing`, ref);
    const data = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
    const sha256 = createHash('sha256').update(data).digest('hex');
    if (sha256 !== ref.sha256 || data.length !== ref.bytes) throw tampered(ref, `its content hashes to ${sha256} (${data.length} bytes), not the recorded ${ref.sha256} (${ref.bytes} bytes)`);
    return data;
  }

  /** Whether the bucket holds the ref's object with its size and digest (metadata only). */
  private async holds(ref: PayloadRef): Promise<boolean> {
    const name = this.nameOf(ref);
    if (!name) return false;
    const info = await (await this.store()).info(name);
    return info !== null && !info.deleted && info.size === ref.bytes && info.digest === `SHA-256=${Buffer.from(ref.sha256, 'hex').toString('base64url')}=`;
  }

  private nameOf(ref: PayloadRef): string | undefined {
    return ref.$ref.startsWith(REF_PREFIX) ? ref.$ref.slice(REF_PREFIX.length) : undefined;
  }

  private store(): Promise<ObjectStore> {
    this.bucket ??= new Objm(this.nc).create(PAYLOADS_BUCKET, { storage: StorageType.File, replicas: this.options.replicas ?? 1 }).catch((err) => {
      this.bucket = undefined; // try again on the next use
      throw err;
    });
    return this.bucket;
  }
}

function tampered(ref: PayloadRef, why: string): PayloadIntegrityError {
  return new PayloadIntegrityError('PAYLOAD_TAMPERED', `the object behind ${ref.$ref} was altered: ${why}`, ref);
}

function unavailable(what: string, cause: unknown): SmartSpecError {
  if (cause instanceof SmartSpecError) return cause;
  return new SmartSpecError('PAYLOAD_UNAVAILABLE', `${what}: ${(cause as Error)?.message ?? cause}`, { retryable: true, cause });
}
