/**
 * Per-key (or, without a key, per-client-IP) rate limit (koa-ratelimit): RATE_LIMIT_MAX requests per
 * RATE_LIMIT_WINDOW_MS. In memory by default (one edge); in Redis when given a
 * client, so every edge sharing that Redis spends one budget per client.
 *
 * The client is `ctx.ip`: with TRUST_PROXY the app sets `proxy` so Koa reads
 * it from X-Forwarded-For. A limited request becomes a RateLimitedError, which
 * the error handler renders as a 429 problem; the limiter's headers stay.
 * If the Redis store fails, requests are let through (fail open) and logged:
 * an outage of the limiter's store must not take the API down with it.
 */
import type { Context, Middleware } from 'koa';
import ratelimit from 'koa-ratelimit';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RateLimitedError } from '../errors.js';

export interface RateLimitOptions {
  max: number;
  windowMs: number;
  /** Shared store; omit for the in-memory store. */
  redis?: Redis;
  /** Key prefix in the store. */
  namespace?: string;
  /** Paths never limited (probes, metrics scrapes). */
  exemptPaths?: ReadonlySet<string>;
  /** Other requests never limited (the explorer's static files). */
  exempt?: (ctx: Context) => boolean;
  logger: Logger;
}

const RESET = 'X-RateLimit-Reset';

interface MemoryEntry {
  reset: number; // epoch seconds
}

export function rateLimit(options: RateLimitOptions): Middleware {
  const { max, windowMs, redis, logger, exemptPaths = new Set<string>(), exempt = () => false, namespace = 'smartspec:ratelimit' } = options;
  const memory = new Map<string, MemoryEntry>();
  let lastSweep = Date.now();

  const limiter = ratelimit({
    driver: redis ? 'redis' : 'memory',
    db: redis ?? memory,
    max,
    duration: windowMs,
    namespace,
    // Per API key once authentication admitted one (ctx.state.apiKeyId), else per client IP.
    id: (ctx) => (typeof ctx.state.apiKeyId === 'string' ? `key:${ctx.state.apiKeyId}` : ctx.ip),
    whitelist: (ctx) => exemptPaths.has(ctx.path) || exempt(ctx),
    throw: false,
  });

  // The memory driver never deletes keys; drop expired clients once per window so the Map stays bounded.
  function sweep(): void {
    const now = Date.now();
    if (redis || now - lastSweep < windowMs) return;
    lastSweep = now;
    for (const [key, entry] of memory) if (entry.reset * 1000 < now) memory.delete(key);
  }

  return async function rateLimit(ctx, next) {
    sweep();
    let passed = false;
    try {
      await limiter(ctx, async () => {
        passed = true;
        ctx.set(RESET, String(Math.ceil(Number(ctx.response.get(RESET)))));
        await next();
      });
    } catch (err) {
      if (passed) throw err; // a failure further down, not the limiter's
      logger.warn({ err, requestId: ctx.state.requestId }, 'rate-limit store failed; request allowed');
      await next();
      return;
    }
    if (passed) return;
    // The limiter answered without calling next: the client is over its budget.
    const reset = Number(ctx.response.get(RESET));
    const retryAfter = Math.max(1, Math.ceil(reset - Date.now() / 1000));
    ctx.set(RESET, String(Math.ceil(reset)));
    ctx.set('Retry-After', String(retryAfter));
    throw new RateLimitedError(max, windowMs, retryAfter);
  };
}
