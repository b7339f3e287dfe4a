/**
 * Operational endpoints: liveness, readiness and Prometheus metrics. They go
 * through the whole middleware stack (headers, logging) but are exempt from
 * the rate limit, so probes and scrapes never starve or get starved.
 */
import Router from '@koa/router';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { NotReadyError } from '../errors.js';

export const OPS_PATHS = new Set(['/healthz', '/readyz', '/metrics']);

/** true = ready; false or a reason string = not ready (the reason is shown in the 503). */
export type ReadinessCheck = () => Promise<boolean | string>;

export interface OpsRouterOptions {
  registry: Registry;
  readiness?: ReadinessCheck;
  /** A hanging dependency check must not hang the probe. */
  readinessTimeoutMs?: number;
  logger: Logger;
}

async function checkReady(check: ReadinessCheck, timeoutMs: number, logger: Logger): Promise<true | string> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`readiness check did not answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    const result = await Promise.race([check(), timeout]);
    if (result === true) return true;
    return typeof result === 'string' && result !== '' ? result : 'readiness check failed';
  } catch (err) {
    // The thrown message may name internal hosts: log it, do not publish it.
    logger.warn({ err }, 'readiness check threw');
    return 'readiness check failed';
  } finally {
    clearTimeout(timer);
  }
}

export function opsRouter(options: OpsRouterOptions): Router {
  const { registry, readiness, readinessTimeoutMs = 2000, logger } = options;
  const router = new Router();

  router.get('/healthz', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok' };
  });

  router.get('/readyz', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    const ready = readiness ? await checkReady(readiness, readinessTimeoutMs, logger) : true;
    if (ready !== true) throw new NotReadyError(ready);
    ctx.body = { status: 'ready' };
  });

  router.get('/metrics', async (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.type = registry.contentType;
    ctx.body = await registry.metrics();
  });

  return router;
}
