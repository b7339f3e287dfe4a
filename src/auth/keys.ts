/**
 * API keys, in the KV bucket `smartspec_keys`: one entry per key id holding
 * its tenant, scopes and the SHA-256 of the key, never the key itself. A key
 * is `ssk_<keyId>_<secret>` (256 random bits): the id says which entry to
 * check, the hash comparison is constant-time. A plain hash suffices because
 * keys are random, not chosen passwords: there is nothing to guess.
 *
 * Lookups read an in-memory mirror kept by a KV watch, so authenticating
 * costs no round trip and a revocation (the entry rewritten with `revokedAt`)
 * reaches every edge as fast as the watch delivers it (milliseconds). Revoked
 * entries stay: "any key was ever created" is what turns authentication on,
 * and revoking the last key must not open the API again.
 */
import { createHash, hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import { StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { KvMirror } from '../nats/kvMirror.js';
import { SmartSpecError } from '../errors.js';
import { KEYS_BUCKET } from '../nats/names.js';
import { SCOPES, TENANT_ID, type Caller, type Scope } from './principal.js';

export interface ApiKeyRecord {
  keyId: string;
  tenant: string;
  scopes: Scope[];
  /** SHA-256 (hex) of the whole key. */
  hash: string;
  name?: string;
  createdAt: string;
  revokedAt?: string;
}

/** What listings show: everything but the hash. */
export type ApiKeyView = Omit<ApiKeyRecord, 'hash'>;

/** A key that works: its hash as bytes and the caller it stands for, made once per KV revision. */
interface LiveKey { hash: Buffer; caller: Caller }

/** Verified keys remembered at most (the map is emptied when full). */
const MAX_VERIFIED = 10_000;

const KEY_FORMAT = /^ssk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const KEY_ID = /^[0-9a-f]{16}$/;

export class KeyNotFoundError extends SmartSpecError {
  constructor(keyId: string) {
    super('KEY_NOT_FOUND', `API key '${keyId}' not found`, { details: { keyId } });
  }
}

export class InvalidKeyRequestError extends SmartSpecError {
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export const viewOf = ({ hash: _hash, ...view }: ApiKeyRecord): ApiKeyView => view;

export class KeyStore {
  /**
   * Key id → its entry; `record` is undefined for an entry deleted from the bucket (refused like a
   * revoked one). A live key also keeps its hash as bytes and the caller it stands for, made once
   * here rather than on every request.
   */
  private readonly keys = new Map<string, { record?: ApiKeyRecord; revision: number; live?: LiveKey }>();
  /**
   * Keys that passed the hash check, to the entry they passed against. SHA-256 costs more than all
   * the rest of authenticating; only genuine keys get in (unknown ones cannot fill it), and a
   * lookup by a 256-bit random key reveals nothing a guess could use.
   */
  private readonly verified = new Map<string, LiveKey>();
  /** The bucket followed in memory; a revocation must reach this edge within a second even if its watch silently stalled. */
  private readonly mirror: KvMirror<ApiKeyRecord>;

  private constructor(private readonly kv: KV, nc: NatsConnection, stallCheckMs = 500) {
    this.mirror = new KvMirror<ApiKeyRecord>(kv, nc, { stallCheckMs, retryMs: 250, apply: (key, record, revision) => this.apply(key, record, revision) });
  }

  static async open(nc: NatsConnection, replicas = 1): Promise<KeyStore> {
    const kv = await new Kvm(nc).create(KEYS_BUCKET, { history: 1, storage: StorageType.File, replicas });
    return new KeyStore(kv, nc);
  }

  /** Make a key; the returned `key` is the only time it exists anywhere. */
  async create(request: { tenant: string; scopes: Scope[]; name?: string }, now = new Date()): Promise<{ key: string; record: ApiKeyRecord }> {
    if (!TENANT_ID.test(request.tenant)) throw new InvalidKeyRequestError(`tenant '${request.tenant}' must be 1-64 lowercase letters, digits, _ or -, starting with a letter or digit`);
    const unknown = request.scopes.find((s) => !(SCOPES as readonly string[]).includes(s));
    if (unknown !== undefined || request.scopes.length === 0) throw new InvalidKeyRequestError(`scopes must be a non-empty list of ${SCOPES.join(', ')}`);
    const keyId = randomBytes(8).toString('hex');
    const key = `ssk_${keyId}_${randomBytes(32).toString('base64url')}`;
    const record: ApiKeyRecord = {
      keyId,
      tenant: request.tenant,
      scopes: [...new Set(request.scopes)],
      hash: sha256(key),
      ...(request.name ? { name: request.name } : {}),
      createdAt: now.toISOString(),
    };
    const revision = await this.kv.create(keyId, JSON.stringify(record));
    if (this.mirror.started) this.apply(keyId, record, revision);
    return { key, record };
  }

  async list(): Promise<ApiKeyRecord[]> {
    const ids: string[] = [];
    for await (const k of await this.kv.keys()) ids.push(k);
    const entries = await Promise.all(ids.map((id) => this.kv.get(id)));
    return entries
      .filter((e) => e && e.operation === 'PUT')
      .map((e) => e!.json() as ApiKeyRecord)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  /** Mark the key revoked (idempotent); it stops working on every edge as the watch delivers it. */
  async revoke(keyId: string, now = new Date()): Promise<ApiKeyRecord> {
    if (!KEY_ID.test(keyId)) throw new KeyNotFoundError(keyId);
    const entry = await this.kv.get(keyId);
    if (!entry || entry.operation !== 'PUT') throw new KeyNotFoundError(keyId);
    const record = entry.json() as ApiKeyRecord;
    if (record.revokedAt) return record;
    const revoked = { ...record, revokedAt: now.toISOString() };
    const revision = await this.kv.put(keyId, JSON.stringify(revoked));
    if (this.mirror.started) this.apply(keyId, revoked, revision);
    return revoked;
  }

  /** Whether any key was ever created (revoked ones count): then the edge requires a key. */
  get anyKeys(): boolean {
    return this.keys.size > 0;
  }

  /** The caller a bearer token stands for, or undefined (malformed, unknown, wrong secret, revoked). */
  authenticate(token: string): Caller | undefined {
    const match = KEY_FORMAT.exec(token);
    if (!match) return undefined;
    const live = this.keys.get(match[1])?.live;
    if (!live) return undefined;
    // A key verified before, and still the live entry of its id (a revocation replaces it): no hash.
    if (this.verified.get(token) === live) return live.caller;
    if (!timingSafeEqual(hash('sha256', token, 'buffer'), live.hash)) return undefined;
    if (this.verified.size >= MAX_VERIFIED) this.verified.clear();
    this.verified.set(token, live);
    return live.caller;
  }

  /** Start mirroring the bucket; resolves once the current keys are in. */
  watch(): Promise<void> {
    return this.mirror.start();
  }

  private apply(keyId: string, record: ApiKeyRecord | undefined, revision: number): void {
    const known = this.keys.get(keyId);
    if (known && known.revision >= revision) return;
    // A deleted entry stays in the map: it still means keys exist.
    const live = record && !record.revokedAt
      ? { hash: Buffer.from(record.hash, 'hex'), caller: { principal: Object.freeze({ tenant: record.tenant, keyId: record.keyId }), scopes: new Set(record.scopes) } }
      : undefined;
    this.keys.set(keyId, { record, revision, ...(live ? { live } : {}) });
  }

  close(): void {
    this.mirror.close();
  }
}
