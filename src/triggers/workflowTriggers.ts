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
  private stopped = false;
  private current?: { stop(): void };

  private constructor(private readonly kv: KV, private readonly nc: NatsConnection) {}

  static async open(nc: NatsConnection, replicas = 1): Promise<WorkflowTriggers> {
    return new WorkflowTriggers(await new Kvm(nc).create(WORKFLOWS_BUCKET, { history: 1, storage: StorageType.File, replicas }), nc);
  }

  /** Start mirroring; resolves once the bucket's current workflows are in. */
  start(): Promise<void> {
    return new Promise<void>((ready) => {
      void (async () => {
        while (!this.stopped && !this.nc.isClosed()) {
          try {
            const iter = await this.kv.watch();
            this.current = iter;
            if ((await this.kv.status()).values === 0) ready();
            for await (const e of iter) {
              const latest = latestKey(e.key);
              if (latest) {
                const stored = e.operation === 'PUT' ? e.json<StoredWorkflow>() : undefined;
                const def = stored && !stored.disabledAt ? stored.definition : undefined;
                if (def?.triggers?.length) this.byKey.set(e.key, def.triggers.map((trigger, index) => ({ tenant: latest.tenant, definition: def, index, trigger })));
                else this.byKey.delete(e.key);
              }
              if (e.delta === 0) ready();
            }
          } catch {
            // connection trouble: watch again below
          }
          await new Promise((r) => setTimeout(r, 500).unref());
        }
      })();
    });
  }

  stop(): void {
    this.stopped = true;
    this.current?.stop();
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
