/**
 * POST /workflows, GET /workflows, GET /workflows/:id — the definition registry —
 * and DELETE /workflows/:id, POST /workflows/:id/disable|enable, which stop (or
 * restart) what starts it: triggers, schedules, submissions. Workflow ids are per
 * tenant: the caller's tenant (an admin may read another's with ?tenant=); another
 * tenant's workflow is a 404.
 */
import Router from '@koa/router';
import { tenantForRead } from '../../auth/tenancy.js';
import { validateDefinition } from '../../definition/validate.js';
import { callerOf } from '../middleware/authentication.js';
import { validateRequest } from '../middleware/validate.js';
import type { RouteDeps } from './deps.js';
import { getWorkflowQuery, listWorkflowsQuery, workflowIdParams } from '../../contracts/http.js';
import { payloadLimitsFromEnv } from '../../payloads/config.js';
import { disabledState, workflowView as view } from '../../registry/workflows.js';
import { assertNesting } from '../../payloads/refs.js';

export function workflowsRouter({ workflows, payloads }: RouteDeps): Router {
  const router = new Router();
  const { maxNesting } = payloads?.limits ?? payloadLimitsFromEnv();

  router.post('/workflows', async (ctx) => {
    assertNesting(ctx.request.body, maxNesting, 'definition'); // 422 before anything is parsed further or stored
    const stored = await workflows.register(validateDefinition(ctx.request.body), new Date(), callerOf(ctx).principal.tenant);
    ctx.status = 201;
    ctx.set('Location', `/workflows/${stored.id}`);
    ctx.body = view(stored);
  });

  router.get('/workflows', async (ctx) => {
    const { query } = validateRequest(ctx, { query: listWorkflowsQuery });
    const tenant = tenantForRead(callerOf(ctx), query.tenant);
    ctx.body = { workflows: (await workflows.list(tenant)).map(({ id, version, createdAt, definition, disabledAt }) => ({ id, version, createdAt, steps: definition.steps.length, ...disabledState(disabledAt) })) };
  });

  router.get('/workflows/:id', async (ctx) => {
    const { query, params } = validateRequest(ctx, { query: getWorkflowQuery, params: workflowIdParams });
    ctx.body = view(await workflows.get(params.id, query.version, tenantForRead(callerOf(ctx), query.tenant)));
  });

  router.delete('/workflows/:id', async (ctx) => {
    const { params } = validateRequest(ctx, { params: workflowIdParams });
    await workflows.remove(params.id, callerOf(ctx).principal.tenant);
    ctx.status = 204;
  });

  for (const action of ['disable', 'enable'] as const) {
    router.post(`/workflows/:id/${action}`, async (ctx) => {
      const { params } = validateRequest(ctx, { params: workflowIdParams });
      ctx.body = view(await workflows.setDisabled(params.id, action === 'disable', new Date(), callerOf(ctx).principal.tenant));
    });
  }

  return router;
}
