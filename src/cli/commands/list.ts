/** `smartspec list`: executions from the execution index, with the filters of GET /executions. */
import { STATUSES, type ExecutionStatus } from '../../../machines/index.js';
import { InvalidInputError } from '../../errors.js';
import { TENANT_ID } from '../../auth/principal.js';
import { ExecutionIndex } from '../../registry/executionIndex.js';
import { closest } from '../../suggest.js';
import type { CommandRun } from '../commandTable.js';
import { withNats } from '../connect.js';
import { formatDuration } from '../format.js';
import { out } from '../io.js';

export const list: CommandRun = async ({ opts }) => {
  const status = opts.status === undefined ? undefined : statusArg(opts.status as string);
  const limit = opts.limit === undefined ? 100 : Number(opts.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new InvalidInputError(`--limit must be a whole number from 1 to 1000, got '${opts.limit}'`);
  const tenant = opts.tenant as string | undefined;
  if (tenant !== undefined && !TENANT_ID.test(tenant)) throw new InvalidInputError(`--tenant '${tenant}' is not a tenant id`);
  return withNats(async ({ nc, replicas }) => {
    const index = await ExecutionIndex.open(nc, replicas);
    try {
      await index.watch();
      const entries = index.list({ status, workflowId: opts.workflow as string | undefined, tenant, limit });
      if (opts.json) {
        out(JSON.stringify({ executions: entries }, null, 2));
        return 0;
      }
      if (entries.length === 0) {
        out('no executions' + (status || opts.workflow || tenant ? ' match' : ''));
        return 0;
      }
      const idWidth = Math.max(12, ...entries.map((e) => e.executionId.length));
      const wfWidth = Math.max(8, ...entries.map((e) => e.workflowId.length));
      out(`${'EXECUTION'.padEnd(idWidth)}  ${'WORKFLOW'.padEnd(wfWidth)}  ${'STATUS'.padEnd(9)}  ${'CREATED'.padEnd(24)}  FOR`);
      for (const e of entries) {
        const ms = Date.parse(e.updatedAt) - Date.parse(e.createdAt);
        out(`${e.executionId.padEnd(idWidth)}  ${e.workflowId.padEnd(wfWidth)}  ${e.status.padEnd(9)}  ${e.createdAt.padEnd(24)}  ${formatDuration(ms)}`);
      }
      return 0;
    } finally {
      index.close();
    }
  });
};

function statusArg(text: string): ExecutionStatus {
  const upper = text.toUpperCase();
  if ((STATUSES as readonly string[]).includes(upper)) return upper as ExecutionStatus;
  const guess = closest(upper, STATUSES);
  throw new InvalidInputError(`--status '${text}' is not a status${guess ? `: did you mean ${guess}?` : ''} (one of ${STATUSES.join(', ')})`);
}
