/**
 * Registered workflow definitions, in a KV bucket. `wf.<id>` holds the latest
 * version; `wf.<id>.v<n>` every version, immutable once written. Registering
 * an id again makes a new version (optimistic: a concurrent registration of
 * the same id retries with the next number).
 *
 * A workflow is disabled by a `disabledAt` on its latest-version key (so every
 * worker's mirror of that key, src/triggers, drops its triggers at once); a
 * new version keeps it disabled. Deleting removes every version.
 *
 * Workflow ids are per tenant: tenant `acme`'s keys live under `t.acme.wf.…`,
 * so no tenant can read another's or make a version of another's. The
 * default tenant keeps the bare `wf.…` keys, which is where everything
 * registered before tenants is.
 */
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { jetstream, StorageType, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Definition } from '../../machines/definition.js';
import { WorkflowDisabledError, WorkflowNotFoundError } from '../errors.js';
import { isWrongLastSequence } from '../nats/compareAndSet.js';
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
  /** Set while the workflow is disabled: nothing starts it (triggers, schedules, submissions). */
  disabledAt?: string;
}

/** How clients see the disabled state (HTTP and CLI): `disabled`, and since when. */
export const disabledState = (disabledAt: string | undefined) => ({ disabled: disabledAt !== undefined, ...(disabledAt ? { disabledAt } : {}) });
export const workflowView = ({ disabledAt, ...stored }: StoredWorkflow) => ({ ...stored, ...disabledState(disabledAt) });

const live = (e: KvEntry | null): StoredWorkflow | undefined => (e && e.operation === 'PUT' ? e.json<StoredWorkflow>() : undefined);

export class WorkflowRegistry {
  private constructor(private readonly kv: KV, private readonly js: JetStreamClient) {}

  static async open(nc: NatsConnection, replicas = 1): Promise<WorkflowRegistry> {
    return new WorkflowRegistry(await new Kvm(nc).create(WORKFLOWS_BUCKET, { history: 1, storage: StorageType.File, replicas }), jetstream(nc));
  }

  async register(definition: Definition, now = new Date(), tenant = DEFAULT_TENANT): Promise<StoredWorkflow> {
    const wf = prefixOf(tenant);
    for (;;) {
      const previous = live(await this.kv.get(`${wf}${definition.id}`));
      const version = (previous?.version ?? 0) + 1;
      const stored: StoredWorkflow = { id: definition.id, version, definition: { ...definition, version }, createdAt: now.toISOString() };
      try {
        await this.kv.create(`${wf}${definition.id}.v${version}`, JSON.stringify(stored));
      } catch {
        continue; // someone registered this version meanwhile
      }
      return this.makeLatest(`${wf}${definition.id}`, stored);
    }
  }

  /**
   * Point the latest-version key at `stored`, keeping a disabled workflow disabled (a compare-and-set:
   * a concurrent disable is not lost). A newer version already there stays the latest.
   */
  private async makeLatest(key: string, stored: StoredWorkflow): Promise<StoredWorkflow> {
    for (;;) {
      const entry = await this.kv.get(key);
      const current = live(entry);
      if (current && current.version > stored.version) return stored;
      const next: StoredWorkflow = { ...stored, ...(current?.disabledAt ? { disabledAt: current.disabledAt } : {}) };
      try {
        if (entry) await this.kv.update(key, JSON.stringify(next), entry.revision);
        else await this.kv.create(key, JSON.stringify(next));
        return next;
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
      }
    }
  }

  /** The latest version, or `version`; either carries the workflow's `disabledAt`. */
  async get(id: string, version?: number, tenant = DEFAULT_TENANT): Promise<StoredWorkflow> {
    const wf = prefixOf(tenant);
    const latest = live(await this.kv.get(`${wf}${id}`));
    const stored = version && latest?.version !== version ? live(await this.kv.get(`${wf}${id}.v${version}`)) : latest;
    if (!latest || !stored) throw new WorkflowNotFoundError(version ? `${id}@v${version}` : id);
    const { disabledAt: _, ...definitionOnly } = stored;
    return { ...definitionOnly, ...(latest.disabledAt ? { disabledAt: latest.disabledAt } : {}) };
  }

  /** The version to start: as `get`, refusing a disabled workflow (409). */
  async runnable(id: string, version?: number, tenant = DEFAULT_TENANT): Promise<StoredWorkflow> {
    const stored = await this.get(id, version, tenant);
    if (stored.disabledAt) throw new WorkflowDisabledError(id, stored.disabledAt);
    return stored;
  }

  async list(tenant = DEFAULT_TENANT): Promise<StoredWorkflow[]> {
    const keys = await kvKeys(this.js, WORKFLOWS_BUCKET, `${prefixOf(tenant)}*`);
    const all = await Promise.all(keys.map((k) => this.kv.get(k)));
    return all.map(live).filter((w): w is StoredWorkflow => w !== undefined).sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Disable (`disabled`) or enable a workflow; doing it twice changes nothing. */
  async setDisabled(id: string, disabled: boolean, now = new Date(), tenant = DEFAULT_TENANT): Promise<StoredWorkflow> {
    const key = `${prefixOf(tenant)}${id}`;
    for (;;) {
      const entry = await this.kv.get(key);
      const current = live(entry);
      if (!current) throw new WorkflowNotFoundError(id);
      if (Boolean(current.disabledAt) === disabled) return current;
      const { disabledAt: _, ...rest } = current;
      const next: StoredWorkflow = disabled ? { ...rest, disabledAt: now.toISOString() } : rest;
      try {
        await this.kv.update(key, JSON.stringify(next), entry!.revision);
        return next;
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
      }
    }
  }

  /**
   * Delete a workflow and every version of it. The latest-version key goes first: that is what
   * the triggers and new starts look at. Executions of it keep their own copy of the definition.
   */
  async remove(id: string, tenant = DEFAULT_TENANT): Promise<void> {
    const key = `${prefixOf(tenant)}${id}`;
    if (!live(await this.kv.get(key))) throw new WorkflowNotFoundError(id);
    await this.kv.delete(key);
    for (const k of await kvKeys(this.js, WORKFLOWS_BUCKET, `${key}.*`)) await this.kv.delete(k);
  }
}
