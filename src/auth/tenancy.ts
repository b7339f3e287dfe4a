/**
 * Which tenant an execution belongs to, and the rule that another tenant's
 * execution does not exist for the caller (404, never 403: ids are not
 * confirmed to outsiders). The tenant is the `principal.tenant` of its
 * ExecutionStarted; the execution index keeps a copy so the check is a
 * memory read. Executions from before tenants belong to the default tenant.
 */
import { ExecutionNotFoundError } from '../errors.js';
import { ForbiddenError } from './errors.js';
import type { EventLog } from '../log/eventLog.js';
import type { ExecutionIndex } from '../registry/executionIndex.js';
import { canSeeTenant, DEFAULT_TENANT, type Caller } from './principal.js';

export class Tenancy {
  constructor(private readonly log: EventLog, private readonly index: ExecutionIndex) {}

  /** The execution's tenant, or undefined when it is not known at all. */
  async tenantOf(executionId: string): Promise<string | undefined> {
    const entry = await this.index.get(executionId);
    if (entry?.tenant) return entry.tenant;
    const first = (await this.log.first(executionId))?.record;
    if (first) return first.type === 'ExecutionStarted' && first.principal ? first.principal.tenant : DEFAULT_TENANT;
    return entry ? DEFAULT_TENANT : undefined;
  }

  /** Throws the execution's 404 when the caller may not see it; unknown ids are left to the route. */
  async assertVisible(caller: Caller, executionId: string): Promise<void> {
    const tenant = await this.tenantOf(executionId);
    if (tenant !== undefined && !canSeeTenant(caller, tenant)) throw new ExecutionNotFoundError(executionId);
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
