/**
 * The triggers of every tenant's latest workflow versions, mirrored from the
 * workflows bucket: registering a new version moves a workflow's triggers to
 * it (the latest-version key changes), a version without triggers stops them,
 * and so do disabling the workflow (`disabledAt` on that key) and deleting it.
 */
import { Kvm, type KV } from '@nats-io/kv';
import { StorageType } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Definition, Trigger } from '../../machines/definition.js';
import { DEFAULT_TENANT } from '../auth/principal.js';
import { KvMirror } from '../nats/kvMirror.js';
import { WORKFLOWS_BUCKET } from '../nats/names.js';
import type { StoredWorkflow } from '../registry/workflows.js';
import { subjectMatches } from './subjects.js';

export interface ActiveTrigger {
  tenant: string;
  definition: Definition;
  /** Its position in the definition's `triggers`: part of the execution ids it derives. */
  index: number;
  trigger: Trigger;
}

/** `wf.<id>` or `t.<tenant>.wf.<id>`: a latest-version key; versioned keys (`….v<n>`) are not. */
function latestKey(key: string): { tenant: string } | undefined {
  const t = key.split('.');
  if (t.length === 2 && t[0] === 'wf') return { tenant: DEFAULT_TENANT };
  if (t.length === 4 && t[0] === 't' && t[2] === 'wf') return { tenant: t[1] };
  return undefined;
}

export class WorkflowTriggers {
  private readonly byKey = new Map<string, ActiveTrigger[]>();
  private readonly following: KvMirror<StoredWorkflow>;

  private constructor(kv: KV, nc: NatsConnection, stallCheckMs: number) {
    this.following = new KvMirror<StoredWorkflow>(kv, nc, { stallCheckMs, retryMs: 500, apply: (key, stored) => this.apply(key, stored) });
  }

  /** `stallCheckMs`: how often the watch is checked for having gone quiet while the bucket moved on. */
  static async open(nc: NatsConnection, replicas = 1, stallCheckMs = 5000): Promise<WorkflowTriggers> {
    return new WorkflowTriggers(await new Kvm(nc).create(WORKFLOWS_BUCKET, { history: 1, storage: StorageType.File, replicas }), nc, stallCheckMs);
  }

  /** Start mirroring; resolves once the bucket's current workflows are in. */
  start(): Promise<void> {
    return this.following.start();
  }

  stop(): void {
    this.following.close();
  }

  private apply(key: string, stored: StoredWorkflow | undefined): void {
    const latest = latestKey(key);
    if (!latest) return;
    const def = stored && !stored.disabledAt ? stored.definition : undefined;
    if (def?.triggers?.length) this.byKey.set(key, def.triggers.map((trigger, index) => ({ tenant: latest.tenant, definition: def, index, trigger })));
    else this.byKey.delete(key);
  }

  /** Resolves once every workflow stored before `sinceMs` (this process's clock) is in. */
  syncedTo(sinceMs: number): Promise<void> {
    return this.following.syncedTo(sinceMs);
  }

  /** The triggers listening on `subject`. */
  matching(subject: string): ActiveTrigger[] {
    const out: ActiveTrigger[] = [];
    for (const triggers of this.byKey.values()) for (const t of triggers) if (subjectMatches(t.trigger.subject, subject)) out.push(t);
    return out;
  }

  /** Every subject some trigger listens on. */
  subjects(): string[] {
    return [...new Set([...this.byKey.values()].flat().map((t) => t.trigger.subject))];
  }
}
