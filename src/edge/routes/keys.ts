/**
 * Admin routes for API keys (scope `admin`, see middleware/authentication.ts):
 * POST /keys makes one and answers the key once; GET /keys lists them without
 * hashes; DELETE /keys/:keyId revokes one (every edge stops accepting it as
 * its KV watch delivers the change).
 */
import Router from '@koa/router';
import { viewOf, type KeyStore } from '../../auth/keys.js';
import { validateRequest } from '../middleware/validate.js';
import { createKeyBody, keyIdParams, listKeysQuery } from '../../contracts/http.js';

export function keysRouter(keys: KeyStore): Router {
  const router = new Router();

  router.post('/keys', async (ctx) => {
    const { body } = validateRequest(ctx, { body: createKeyBody });
    const { key, record } = await keys.create(body);
    ctx.status = 201;
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { key, ...viewOf(record) };
  });

  router.get('/keys', async (ctx) => {
    const { query } = validateRequest(ctx, { query: listKeysQuery });
    ctx.body = { keys: (await keys.list()).filter((k) => !query.tenant || k.tenant === query.tenant).map(viewOf) };
  });

  router.delete('/keys/:keyId', async (ctx) => {
    const { keyId } = validateRequest(ctx, { params: keyIdParams }).params;
    ctx.body = viewOf(await keys.revoke(keyId));
  });

  return router;
}
