/**
 * Which tenant an execution belongs to, and the rule that another tenant's
 * execution does not exist for the caller (404, never 403: ids are not
 * confirmed to outsiders). The tenant is the `principal.tenant` of its
 * ExecutionStarted; the execution index keeps a copy so the check is a
 * memory read. Executions from before tenants belong to the default tenant.
 */
import { JetStreamApiError, jetstreamManager, type JetStreamManager, type MsgRequest } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ExecutionNotFoundError } from '../errors.js';
import { ForbiddenError } from './errors.js';
import type { LogRecord } from '../log/records.js';
import { EXECUTIONS_STREAM, executionSubject } from '../nats/names.js';
import type { ExecutionIndex } from '../registry/executionIndex.js';
import { canSeeTenant, DEFAULT_TENANT, type Caller } from './principal.js';

export class Tenancy {
  private jsm?: Promise<JetStreamManager>;

  constructor(private readonly nc: NatsConnection, private readonly index: ExecutionIndex) {}

  /** The execution's tenant, or undefined when it is not known at all. */
  async tenantOf(executionId: string): Promise<string | undefined> {
    const entry = await this.index.get(executionId);
    if (entry?.tenant) return entry.tenant;
    const first = await this.firstRecord(executionId);
    if (first) return first.type === 'ExecutionStarted' && first.principal ? first.principal.tenant : DEFAULT_TENANT;
    return entry ? DEFAULT_TENANT : undefined;
  }

  /** Throws the execution's 404 when the caller may not see it; unknown ids are left to the route. */
  async assertVisible(caller: Caller, executionId: string): Promise<void> {
    const tenant = await this.tenantOf(executionId);
    if (tenant !== undefined && !canSeeTenant(caller, tenant)) throw new ExecutionNotFoundError(executionId);
  }

  private async firstRecord(executionId: string): Promise<LogRecord | undefined> {
    this.jsm ??= jetstreamManager(this.nc);
    try {
      // The server (2.9+) takes next_by_subj on STREAM.MSG.GET (as src/log/eventLog.ts reads).
      const m = await (await this.jsm).streams.getMessage(EXECUTIONS_STREAM, { next_by_subj: executionSubject(executionId), seq: 1 } as unknown as MsgRequest);
      return m ? m.json<LogRecord>() : undefined;
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10037) return undefined; // no message
      throw err;
    }
  }
}

/**
 * The tenant a read concerns: `?tenant=` is for admin keys; anyone else reads
 * their own tenant, and naming another is refused.
 */
export function tenantForRead(caller: Caller, requested: string | undefined): string {
  if (requested === undefined || requested === caller.principal.tenant) return caller.principal.tenant;
  if (!caller.scopes.has('admin')) throw new ForbiddenError('admin', `only an admin key may read another tenant ('${requested}')`);
  return requested;
}
