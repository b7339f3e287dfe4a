import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REDIS_SKIP_REASON, useRedisServer } from '../../support/redis.js';
import { startEdge, testRouter } from './support.js';

const routes = () =>
  testRouter((r) => {
    r.get('/ping', (ctx) => {
      ctx.body = { pong: true };
    });
  });

const get = (url: string, headers: Record<string, string> = {}) => fetch(url, { headers });

async function statuses(url: string, n: number, headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await get(url, headers)).status);
  return out;
}

describe('rate limit (memory store)', () => {
  it('allows RATE_LIMIT_MAX requests per window, then 429 problem with Retry-After and rate-limit headers', async () => {
    const edge = await startEdge({ routers: [routes()], env: { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' } });
    const remaining: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await get(`${edge.url}/ping`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe('3');
      remaining.push(res.headers.get('x-ratelimit-remaining'));
    }
    expect(remaining).toEqual(['2', '1', '0']);

    const limited = await get(`${edge.url}/ping`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(55);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.headers.get('x-ratelimit-limit')).toBe('3');
    expect(limited.headers.get('x-ratelimit-remaining')).toBe('0');
    const reset = limited.headers.get('x-ratelimit-reset') ?? '';
    expect(reset).toMatch(/^\d+$/);
    expect(Number(reset) - Date.now() / 1000).toBeGreaterThan(55);
    expect(await limited.json()).toMatchObject({ status: 429, code: 'RATE_LIMITED', retryAfterSeconds: retryAfter, limit: 3 });
  });

  it('gives the budget back when the window ends', async () => {
    const edge = await startEdge({ routers: [routes()], env: { RATE_LIMIT_MAX: '2', RATE_LIMIT_WINDOW_MS: '600' } });
    expect(await statuses(`${edge.url}/ping`, 3)).toEqual([200, 200, 429]);
    await new Promise((r) => setTimeout(r, 650));
    expect((await get(`${edge.url}/ping`)).status).toBe(200);
  });

  it('exempts /healthz, /readyz and /metrics: they neither spend nor are refused', async () => {
    const edge = await startEdge({ routers: [routes()], env: { RATE_LIMIT_MAX: '2' } });
    expect(await statuses(`${edge.url}/healthz`, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(await statuses(`${edge.url}/ping`, 3)).toEqual([200, 200, 429]);
    for (const p of ['/healthz', '/readyz', '/metrics']) {
      const res = await get(`${edge.url}${p}`);
      expect(res.status, p).toBe(200);
      expect(res.headers.get('x-ratelimit-limit'), p).toBeNull();
    }
  });

  it('with TRUST_PROXY, clients behind a load balancer (X-Forwarded-For) are limited one by one', async () => {
    const edge = await startEdge({ routers: [routes()], env: { RATE_LIMIT_MAX: '2', TRUST_PROXY: 'true' } });
    expect(await statuses(`${edge.url}/ping`, 3, { 'x-forwarded-for': '203.0.113.1' })).toEqual([200, 200, 429]);
    expect(await statuses(`${edge.url}/ping`, 3, { 'x-forwarded-for': '203.0.113.2' })).toEqual([200, 200, 429]);
    // Only the entry the load balancer appended counts: a client cannot mint budgets by prepending fake hops.
    expect((await get(`${edge.url}/ping`, { 'x-forwarded-for': '198.51.100.9, 203.0.113.1' })).status).toBe(429);
  });

  it('without TRUST_PROXY, X-Forwarded-For is ignored and all those clients share the socket address budget', async () => {
    const edge = await startEdge({ routers: [routes()], env: { RATE_LIMIT_MAX: '2' } });
    expect(await statuses(`${edge.url}/ping`, 2, { 'x-forwarded-for': '203.0.113.1' })).toEqual([200, 200]);
    expect((await get(`${edge.url}/ping`, { 'x-forwarded-for': '203.0.113.2' })).status).toBe(429);
  });
});

// A redis-server of this file's own (test/support/redis.ts); skipped, saying so, without the binary.
describe.skipIf(REDIS_SKIP_REASON !== undefined)(`rate limit (Redis store)${REDIS_SKIP_REASON ? ` — ${REDIS_SKIP_REASON}` : ''}`, () => {
  const redisServer = useRedisServer();
  const namespace = `smartspec-test:${randomUUID()}`;
  let redis: Redis;
  let REDIS_URL: string;

  beforeAll(async () => {
    REDIS_URL = redisServer.url;
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    await redis.ping();
  });

  afterAll(async () => {
    const keys = await redis.keys(`${namespace}*`);
    if (keys.length > 0) await redis.del(...keys);
    await redis.quit();
  });

  it('is one budget across two edges sharing the Redis', async () => {
    const env = { RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW_MS: '60000' };
    // Edge A opens its own client from REDIS_URL; edge B is handed one: both reach the same store.
    const a = await startEdge({ routers: [routes()], env: { ...env, REDIS_URL }, rateLimitNamespace: `${namespace}:shared` });
    const b = await startEdge({ routers: [routes()], env, redis, rateLimitNamespace: `${namespace}:shared` });
    expect(await statuses(`${a.url}/ping`, 2)).toEqual([200, 200]);
    const third = await get(`${b.url}/ping`);
    expect(third.status).toBe(200);
    expect(third.headers.get('x-ratelimit-remaining')).toBe('0');
    const limitedB = await get(`${b.url}/ping`);
    const limitedA = await get(`${a.url}/ping`);
    expect([limitedA.status, limitedB.status]).toEqual([429, 429]);
    expect(Number(limitedA.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await limitedA.json()).toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('keys are per client IP under the namespace (a different namespace is a different budget)', async () => {
    const env = { RATE_LIMIT_MAX: '1' };
    const a = await startEdge({ routers: [routes()], env, redis, rateLimitNamespace: `${namespace}:one` });
    const b = await startEdge({ routers: [routes()], env, redis, rateLimitNamespace: `${namespace}:two` });
    expect(await statuses(`${a.url}/ping`, 2)).toEqual([200, 429]);
    expect((await get(`${b.url}/ping`)).status).toBe(200);
    expect((await redis.keys(`${namespace}:one:*`)).length).toBe(1);
  });
});

describe('rate limit (Redis store unreachable)', () => {
  it('fails open when the Redis store is unreachable, and says so in the log', async () => {
    const edge = await startEdge({ routers: [routes()], env: { RATE_LIMIT_MAX: '1', REDIS_URL: 'redis://127.0.0.1:1' } });
    expect(await statuses(`${edge.url}/ping`, 2)).toEqual([200, 200]);
    await edge.waitForLog((l) => l.msg === 'rate-limit store failed; request allowed');
  });
});
