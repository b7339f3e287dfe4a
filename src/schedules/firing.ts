/**
 * Starting the execution of one firing: a start command for the schedule's
 * workflow, with an execution id derived from the schedule and the firing's
 * instant. Two schedulers (or a retry) starting the same firing publish the
 * same id and message id: JetStream stores the command once, and a worker
 * refuses to start an execution whose log exists.
 */
import type { CommandBus } from '../bus/commands.js';
import { WorkflowDisabledError, WorkflowNotFoundError } from '../errors.js';
import type { WorkflowRegistry } from '../registry/workflows.js';
import type { Principal } from '../auth/principal.js';
import type { Schedule } from './scheduleStore.js';

/** `20261201T090000Z`, with milliseconds only when there are some: readable, and a valid id token. */
function compactInstant(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-12-01T09:00:00.000Z
  const millis = iso.slice(20, 23);
  return iso.slice(0, 19).replace(/[-:]/g, '') + (millis === '000' ? '' : millis) + 'Z';
}

/** The execution id of a firing: `sched-<id>-<instant>`; a manual trigger says so. */
export function firingExecutionId(scheduleId: string, atMs: number, manual = false): string {
  return `sched-${scheduleId}${manual ? '-manual' : ''}-${compactInstant(atMs)}`;
}

/** Who a scheduled execution was started by: the schedule, on its tenant. */
export const schedulePrincipal = (s: Schedule): Principal => ({ tenant: s.tenant, keyId: `schedule:${s.id}` });

export class FiringStarter {
  constructor(private readonly workflows: WorkflowRegistry, private readonly bus: CommandBus) {}

  /** Why the schedule's firings start nothing now (its workflow is disabled or deleted), or undefined. */
  async refusal(schedule: Schedule): Promise<string | undefined> {
    try {
      await this.workflows.runnable(schedule.workflowId, schedule.version, schedule.tenant);
      return undefined;
    } catch (err) {
      if (err instanceof WorkflowDisabledError) return `workflow '${schedule.workflowId}' is disabled`;
      if (err instanceof WorkflowNotFoundError) return `workflow '${schedule.workflowId}${schedule.version ? `@v${schedule.version}` : ''}' does not exist (deleted?)`;
      throw err;
    }
  }

  /** Publish the start of the firing at `atMs`; the workflow version is the pinned one or the latest. */
  async start(schedule: Schedule, atMs: number, manual = false): Promise<string> {
    const { definition } = await this.workflows.runnable(schedule.workflowId, schedule.version, schedule.tenant);
    const executionId = firingExecutionId(schedule.id, atMs, manual);
    await this.bus.publish('start', { executionId, definition, input: schedule.input, principal: schedulePrincipal(schedule) }, `start:${executionId}`);
    return executionId;
  }
}
