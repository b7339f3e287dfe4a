/**
 * The edge's Koa application: the contracted middleware stack, outermost
 * first, then the built-in ops routes, then the routers the caller mounts.
 *
 *   1 error handling → 2 request logging → 3 security headers →
 *   4 request validation → 5 authentication → 6 rate limit → 7 CORS → routes
 *
 * Consequences of this order, on purpose:
 * - every response, including 413/415/429/500 and 404, carries the security
 *   headers and X-Request-Id, and is problem+json (1 catches all below);
 * - the log line shows the final status, because it is written when the
 *   response completes (see requestLogging.ts);
 * - malformed or oversized requests are refused before they spend rate-limit
 *   budget, but a body is read (bounded by MAX_BODY_BYTES) before the limit
 *   is checked;
 * - authentication sits just before the rate limit, which counts per API key
 *   (per IP without one); a 401/403 costs no rate-limit budget and carries
 *   the security headers, but (like a 429) no CORS headers;
 * - CORS headers are set only for requests that pass the limit, so a browser
 *   sees a 429 as a CORS failure, and preflights count against the budget.
 */
import Koa from 'koa';
import type Router from '@koa/router';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { EdgeConfig } from './config.js';
import { createHttpMetrics } from './metrics.js';
import { authentication, isExplorerFile, type AuthenticationOptions } from './middleware/authentication.js';
import { corsPolicy } from './middleware/cors.js';
import { errorHandling } from './middleware/errorHandling.js';
import { rateLimit } from './middleware/rateLimit.js';
import { requestLogging } from './middleware/requestLogging.js';
import { requestValidation } from './middleware/requestValidation.js';
import { securityHeaders } from './middleware/securityHeaders.js';
import { OPS_PATHS, opsRouter, type ReadinessCheck } from './routes/ops.js';

export interface EdgeAppOptions {
  config: EdgeConfig;
  logger: Logger;
  /** Mounted after the ops routes, in order; each also answers 405 for known paths. */
  routers?: Router[];
  /** Default: a fresh registry (so several apps in one process do not collide). */
  metricsRegistry?: Registry;
  /** Readiness of dependencies for GET /readyz (true, or false/reason when not ready). */
  readiness?: ReadinessCheck;
  /** A readiness check slower than this counts as not ready (default 2000). */
  readinessTimeoutMs?: number;
  /** Rate-limit store shared by edges; default: one from REDIS_URL, else memory. Not closed by the app. */
  redis?: Redis;
  /** Rate-limit key prefix in Redis (default smartspec:ratelimit). */
  rateLimitNamespace?: string;
  /** API keys and whether they are required (src/auth); default: open, as before keys existed. */
  auth?: AuthenticationOptions;
}

export type EdgeApp = Koa & {
  /** Release what the app opened itself (a Redis client made from REDIS_URL). */
  close(): Promise<void>;
};

/** Function names of the stack, outermost first: the contract, checked by tests. */
export const MIDDLEWARE_ORDER = ['errorHandling', 'requestLogging', 'securityHeaders', 'requestValidation', 'authentication', 'rateLimit', 'cors'] as const;

export function createEdgeApp(options: EdgeAppOptions): EdgeApp {
  const { config, logger, routers = [], readiness, readinessTimeoutMs } = options;
  // Behind one load balancer: trust only the last X-Forwarded-For entry (the one it appended), not client-supplied ones.
  const app = new Koa({ proxy: config.trustProxy, maxIpsCount: config.trustProxy ? 1 : 0 });

  const ownedRedis = !options.redis && config.redisUrl ? connectRedis(config.redisUrl, logger) : undefined;
  const redis = options.redis ?? ownedRedis;
  const metrics = createHttpMetrics(options.metricsRegistry);

  app.use(errorHandling({ logger }));
  app.use(requestLogging({ logger, onComplete: metrics.observe, quietPaths: OPS_PATHS }));
  app.use(securityHeaders());
  app.use(requestValidation({ maxBodyBytes: config.maxBodyBytes }));
  app.use(authentication(options.auth));
  app.use(
    rateLimit({
      max: config.rateLimitMax,
      windowMs: config.rateLimitWindowMs,
      redis,
      namespace: options.rateLimitNamespace,
      exemptPaths: OPS_PATHS,
      // A page load fetches a few static files: they must not spend the budget the page's API calls need.
      exempt: isExplorerFile,
      logger,
    }),
  );
  app.use(corsPolicy({ origins: config.corsOrigins }));
  for (const router of [opsRouter({ registry: metrics.registry, readiness, readinessTimeoutMs, logger }), ...routers]) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }

  // Errors Koa sees outside our handler (e.g. a streamed body failing): log them, not stderr.
  app.on('error', (err: unknown, ctx?: Koa.Context) => {
    logger.error({ err, requestId: ctx?.state.requestId }, 'koa error');
  });

  return Object.assign(app, {
    async close() {
      await ownedRedis?.quit().catch(() => ownedRedis.disconnect());
    },
  });
}

function connectRedis(url: string, logger: Logger): Redis {
  // Fail fast per command: the limiter fails open rather than queueing requests behind a dead Redis.
  const client = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 1000 });
  client.on('error', (err) => logger.warn({ err }, 'redis (rate-limit store) error'));
  return client;
}
