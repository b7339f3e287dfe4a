/**
 * Registered workflow definitions, in a KV bucket. `wf.<id>` holds the latest
 * version; `wf.<id>.v<n>` every version, immutable once written. Registering
 * an id again makes a new version (optimistic: a concurrent registration of
 * the same id retries with the next number).
 *
 * Workflow ids are per tenant: tenant `acme`'s keys live under `t.acme.wf.…`,
 * so no tenant can read another's or make a version of another's. The
 * default tenant keeps the bare `wf.…` keys, which is where everything
 * registered before tenants is.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { jetstream, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Definition } from '../../machines/definition.js';
import { WorkflowNotFoundError } from '../errors.js';
import { kvKeys } from '../nats/kvKeys.js';
import { WORKFLOWS_BUCKET } from '../nats/names.js';
import { DEFAULT_TENANT, TENANT_ID } from '../auth/principal.js';

/** The KV key prefix of a tenant's workflows. */
function prefixOf(tenant: string): string {
  if (tenant === DEFAULT_TENANT) return 'wf.';
  if (!TENANT_ID.test(tenant)) throw new Error(`invalid tenant id '${tenant}'`);
  return `t.${tenant}.wf.`;
}

export interface StoredWorkflow {
  id: string;
  version: number;
  definition: Definition;
  createdAt: string;
}

export class WorkflowRegistry {
  private constructor(private readonly kv: KV, private readonly js: JetStreamClient) {}

  static async open(nc: NatsConnection, replicas = 1): Promise<WorkflowRegistry> {
    return new WorkflowRegistry(await new Kvm(nc).create(WORKFLOWS_BUCKET, { history: 1, storage: StorageType.File, replicas }), jetstream(nc));
  }

  async register(definition: Definition, now = new Date(), tenant = DEFAULT_TENANT): Promise<StoredWorkflow> {
    const wf = prefixOf(tenant);
    for (;;) {
      const latest = await this.kv.get(`${wf}${definition.id}`);
      const previous = latest && latest.operation === 'PUT' ? (latest.json() as StoredWorkflow) : undefined;
      const version = (previous?.version ?? 0) + 1;
      const stored: StoredWorkflow = { id: definition.id, version, definition: { ...definition, version }, createdAt: now.toISOString() };
      try {
        await this.kv.create(`${wf}${definition.id}.v${version}`, JSON.stringify(stored));
      } catch {
        continue; // someone registered this version meanwhile
      }
      await this.kv.put(`${wf}${definition.id}`, JSON.stringify(stored));
      return stored;
    }
  }

  async get(id: string, version?: number, tenant = DEFAULT_TENANT): Promise<StoredWorkflow> {
    const wf = prefixOf(tenant);
    const e = await this.kv.get(version ? `${wf}${id}.v${version}` : `${wf}${id}`);
    if (!e || e.operation !== 'PUT') throw new WorkflowNotFoundError(version ? `${id}@v${version}` : id);
    return e.json() as StoredWorkflow;
  }

  async list(tenant = DEFAULT_TENANT): Promise<StoredWorkflow[]> {
    const keys = await kvKeys(this.js, WORKFLOWS_BUCKET, `${prefixOf(tenant)}*`);
    const all = await Promise.all(keys.map((k) => this.kv.get(k)));
    return all.filter((e) => e && e.operation === 'PUT').map((e) => e!.json() as StoredWorkflow).sort((a, b) => a.id.localeCompare(b.id));
  }
}
