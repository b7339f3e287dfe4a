/**
 * CORS (@koa/cors) from CORS_ORIGINS. No list: no CORS headers at all, so
 * browsers refuse cross-origin reads. `*` allows any origin (without
 * credentials). Otherwise the request's Origin is echoed only when listed,
 * and preflights for unlisted origins get no allow headers.
 */
import cors from '@koa/cors';
import type { Middleware } from 'koa';
import { REQUEST_ID_HEADER } from './requestLogging.js';

export function corsPolicy(options: { origins: readonly string[] }): Middleware {
  const allowAny = options.origins.includes('*');
  const allowed = new Set(options.origins);
  return cors({
    origin: (ctx) => {
      if (allowAny) return '*';
      const origin = ctx.get('Origin');
      return allowed.has(origin) ? origin : '';
    },
    allowMethods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowHeaders: ['Content-Type', 'Idempotency-Key', REQUEST_ID_HEADER, 'Authorization'],
    // Let browser clients read the ids and limits they need to behave.
    exposeHeaders: [REQUEST_ID_HEADER, 'Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Location'],
    maxAge: 600,
  });
}
