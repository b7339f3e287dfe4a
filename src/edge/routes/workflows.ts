/**
 * POST /workflows, GET /workflows, GET /workflows/:id — the definition registry.
 * Workflow ids are per tenant: the caller's tenant (an admin may read another's with ?tenant=).
 */
import Router from '@koa/router';
import { z } from 'zod';
import { TENANT_ID } from '../../auth/principal.js';
import { tenantForRead } from '../../auth/tenancy.js';
import { validateDefinition } from '../../definition/validate.js';
import { callerOf } from '../middleware/authentication.js';
import { validateRequest } from '../middleware/validate.js';
import type { RouteDeps } from './deps.js';
import { payloadLimitsFromEnv } from '../../payloads/config.js';
import { assertNesting } from '../../payloads/refs.js';

const tenantQuery = z.string().regex(TENANT_ID, 'is not a tenant id').optional();

export function workflowsRouter({ workflows, payloads }: RouteDeps): Router {
  const router = new Router();
  const { maxNesting } = payloads?.limits ?? payloadLimitsFromEnv();

  router.post('/workflows', async (ctx) => {
    assertNesting(ctx.request.body, maxNesting, 'definition'); // 422 before anything is parsed further or stored
    const stored = await workflows.register(validateDefinition(ctx.request.body), new Date(), callerOf(ctx).principal.tenant);
    ctx.status = 201;
    ctx.set('Location', `/workflows/${stored.id}`);
    ctx.body = stored;
  });

  router.get('/workflows', async (ctx) => {
    const { query } = validateRequest(ctx, { query: z.object({ tenant: tenantQuery }) });
    const tenant = tenantForRead(callerOf(ctx), query.tenant);
    ctx.body = { workflows: (await workflows.list(tenant)).map(({ id, version, createdAt, definition }) => ({ id, version, createdAt, steps: definition.steps.length })) };
  });

  router.get('/workflows/:id', async (ctx) => {
    const { query, params } = validateRequest(ctx, {
      query: z.object({ version: z.coerce.number().int().min(1).optional(), tenant: tenantQuery }),
      params: z.object({ id: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]*$/, 'is not a workflow id') }),
    });
    ctx.body = await workflows.get(params.id, query.version, tenantForRead(callerOf(ctx), query.tenant));
  });

  return router;
}
