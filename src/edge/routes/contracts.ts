/**
 * The API's contracts for tools and people: the OpenAPI document, the JSON
 * Schema of definitions and a reference page rendering the document. They
 * describe the API and hold no data, so they are open like /healthz
 * (middleware/authentication.ts), and cacheable for a short while.
 */
import Router from '@koa/router';
import { DEFINITION_SCHEMA_PATH, definitionJsonSchema } from '../../contracts/definitionSchema.js';
import { OPENAPI_PATH, REFERENCE_PATH, openApiDocument } from '../../contracts/openapi.js';
import { referenceFile } from '../../contracts/reference.js';

export const CONTRACT_PATHS: ReadonlySet<string> = new Set([OPENAPI_PATH, DEFINITION_SCHEMA_PATH, REFERENCE_PATH]);
/** Whether a path is one of the contracts (the reference page's files included). */
export const isContractPath = (path: string) => CONTRACT_PATHS.has(path) || path.startsWith(`${REFERENCE_PATH}/`);

export function contractsRouter(): Router {
  const router = new Router();

  router.get(OPENAPI_PATH, (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=60');
    ctx.body = openApiDocument();
  });

  router.get(DEFINITION_SCHEMA_PATH, (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=60');
    ctx.type = 'application/schema+json';
    ctx.body = JSON.stringify(definitionJsonSchema());
  });

  const sendFile = async (ctx: Router.RouterContext, name: string) => {
    const file = referenceFile(name);
    if (!file) return; // no body: the error handler answers the usual 404 problem
    const { type, body } = await file;
    ctx.set('Cache-Control', 'public, max-age=60');
    ctx.type = type;
    ctx.body = body;
  };
  router.get(REFERENCE_PATH, (ctx) => sendFile(ctx, 'index.html'));
  router.get(`${REFERENCE_PATH}/:file`, (ctx) => sendFile(ctx, ctx.params.file));

  return router;
}
