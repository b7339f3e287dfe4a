/**
 * Idempotency-Key → execution id, in a KV bucket with a 24 h TTL. `create`
 * is atomic, so two concurrent submissions with one key start one execution.
 */
import { createHash } from 'node:crypto';
import { Kvm, type KV } from '@nats-io/kv';
import { StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { IDEMPOTENCY_BUCKET } from '../nats/names.js';
import { DEFAULT_TENANT } from '../auth/principal.js';

export class IdempotencyStore {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, replicas = 1, ttlMs = 24 * 3600_000): Promise<IdempotencyStore> {
    return new IdempotencyStore(await new Kvm(nc).create(IDEMPOTENCY_BUCKET, { history: 1, ttl: ttlMs, storage: StorageType.File, replicas }));
  }

  /**
   * Claim the key for `executionId`; returns the id that owns the key (ours, or an earlier one).
   * Keys are per tenant: two tenants using one key never meet (the default tenant keeps the plain hash).
   */
  async claim(key: string, executionId: string, tenant = DEFAULT_TENANT): Promise<{ executionId: string; fresh: boolean }> {
    const k = createHash('sha256').update(tenant === DEFAULT_TENANT ? key : `${tenant}\0${key}`).digest('hex');
    try {
      await this.kv.create(k, executionId);
      return { executionId, fresh: true };
    } catch {
      const e = await this.kv.get(k);
      if (e && e.operation === 'PUT') return { executionId: e.string(), fresh: false };
      return this.claim(key, executionId, tenant); // expired between the two calls
    }
  }
}
