/**
 * The schedule routes: create, list, read (with recent firings), pause,
 * resume, trigger now, delete. Schedules are per tenant, like workflows: another
 * tenant's schedule is a 404. The firings themselves are the workers' (src/schedules).
 */
import Router from '@koa/router';
import { z } from 'zod';
import type { WorkflowRegistry } from '../../registry/workflows.js';
import { FiringStarter } from '../../schedules/firing.js';
import { createSchedule, createScheduleBody, pauseSchedule, resumeSchedule, scheduleView, triggerSchedule } from '../../schedules/operations.js';
import { SCHEDULE_ID, type ScheduleStore } from '../../schedules/scheduleStore.js';
import type { CommandBus } from '../../bus/commands.js';
import { callerOf } from '../middleware/authentication.js';
import { validateRequest } from '../middleware/validate.js';

const idParams = z.object({ id: z.string().regex(SCHEDULE_ID, 'is not a schedule id') }).passthrough();

export function schedulesRouter({ schedules, workflows, bus }: { schedules: ScheduleStore; workflows: WorkflowRegistry; bus: CommandBus }): Router {
  const router = new Router();
  const starter = new FiringStarter(workflows, bus);
  const tenantOf = (ctx: Parameters<typeof callerOf>[0]) => callerOf(ctx).principal.tenant;
  const idOf = (ctx: Parameters<typeof callerOf>[0]) => validateRequest(ctx, { params: idParams }).params.id;

  router.post('/schedules', async (ctx) => {
    const { body } = validateRequest(ctx, { body: createScheduleBody });
    const schedule = await createSchedule(schedules, workflows, body, tenantOf(ctx));
    ctx.status = 201;
    ctx.set('Location', `/schedules/${schedule.id}`);
    ctx.body = scheduleView(schedule, false);
  });

  router.get('/schedules', async (ctx) => {
    ctx.body = { schedules: (await schedules.list(tenantOf(ctx))).map((s) => scheduleView(s, false)) };
  });

  router.get('/schedules/:id', async (ctx) => {
    ctx.body = scheduleView(await schedules.get(tenantOf(ctx), idOf(ctx)), true);
  });

  router.post('/schedules/:id/pause', async (ctx) => {
    ctx.body = scheduleView(await pauseSchedule(schedules, tenantOf(ctx), idOf(ctx)), false);
  });

  router.post('/schedules/:id/resume', async (ctx) => {
    ctx.body = scheduleView(await resumeSchedule(schedules, tenantOf(ctx), idOf(ctx)), false);
  });

  router.post('/schedules/:id/trigger', async (ctx) => {
    const id = idOf(ctx);
    const executionId = await triggerSchedule(schedules, starter, tenantOf(ctx), id);
    ctx.status = 202;
    ctx.set('Location', `/executions/${executionId}`);
    ctx.body = { scheduleId: id, executionId };
  });

  router.delete('/schedules/:id', async (ctx) => {
    await schedules.remove(tenantOf(ctx), idOf(ctx));
    ctx.status = 204;
  });

  return router;
}
