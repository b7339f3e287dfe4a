/**
 * Admin routes for API keys (scope `admin`, see middleware/authentication.ts):
 * POST /keys makes one and answers the key once; GET /keys lists them without
 * hashes; DELETE /keys/:keyId revokes one (every edge stops accepting it as
 * its KV watch delivers the change).
 */
import Router from '@koa/router';
import { z } from 'zod';
import { viewOf, type KeyStore } from '../../auth/keys.js';
import { SCOPES, TENANT_ID } from '../../auth/principal.js';
import { validateRequest } from '../middleware/validate.js';

const createBody = z.strictObject({
  tenant: z.string().regex(TENANT_ID, 'must be 1-64 lowercase letters, digits, _ or -, starting with a letter or digit'),
  scopes: z.array(z.enum(SCOPES)).min(1),
  name: z.string().min(1).max(200).optional(),
});

export function keysRouter(keys: KeyStore): Router {
  const router = new Router();

  router.post('/keys', async (ctx) => {
    const { body } = validateRequest(ctx, { body: createBody });
    const { key, record } = await keys.create(body);
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { key, ...viewOf(record) };
  });

  router.get('/keys', async (ctx) => {
    const { query } = validateRequest(ctx, { query: z.object({ tenant: z.string().optional() }) });
    ctx.body = { keys: (await keys.list()).filter((k) => !query.tenant || k.tenant === query.tenant).map(viewOf) };
  });

  router.delete('/keys/:keyId', async (ctx) => {
    ctx.body = viewOf(await keys.revoke(ctx.params.keyId));
  });

  return router;
}
