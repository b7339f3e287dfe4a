import { describe, expect, it } from 'vitest';
import { startEdge, testRouter } from './support.js';

const ALLOWED = 'https://app.example.com';
const routes = () =>
  testRouter((r) => {
    r.get('/things', (ctx) => {
      ctx.body = [];
    });
    r.post('/things', (ctx) => {
      ctx.status = 201;
      ctx.body = {};
    });
  });

function preflight(url: string, origin: string): Promise<Response> {
  return fetch(url, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, idempotency-key' },
  });
}

describe('CORS', () => {
  it('answers a preflight from an allowed origin', async () => {
    const edge = await startEdge({ routers: [routes()], env: { CORS_ORIGINS: `${ALLOWED}, https://other.example.com` } });
    const res = await preflight(`${edge.url}/things`, ALLOWED);
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
    expect(res.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('idempotency-key');
    expect(res.headers.get('vary')).toContain('Origin');
    // Security headers are on the preflight too.
    expect(res.headers.get('x-frame-options')).toBe('DENY');
  });

  it('refuses another origin: no allow headers on the preflight or the response', async () => {
    const edge = await startEdge({ routers: [routes()], env: { CORS_ORIGINS: ALLOWED } });
    const pre = await preflight(`${edge.url}/things`, 'https://evil.example.com');
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-methods')).toBeNull();
    const res = await fetch(`${edge.url}/things`, { headers: { origin: 'https://evil.example.com' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('lets an allowed origin read the request id and rate-limit headers', async () => {
    const edge = await startEdge({ routers: [routes()], env: { CORS_ORIGINS: ALLOWED } });
    const res = await fetch(`${edge.url}/things`, { headers: { origin: ALLOWED } });
    expect(res.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    const exposed = res.headers.get('access-control-expose-headers') ?? '';
    expect(exposed).toContain('X-Request-Id');
    expect(exposed).toContain('Retry-After');
  });

  it('allows no cross-origin access when CORS_ORIGINS is unset, and any with *', async () => {
    const none = await startEdge({ routers: [routes()] });
    expect((await preflight(`${none.url}/things`, ALLOWED)).headers.get('access-control-allow-origin')).toBeNull();
    expect((await fetch(`${none.url}/things`, { headers: { origin: ALLOWED } })).headers.get('access-control-allow-origin')).toBeNull();

    const any = await startEdge({ routers: [routes()], env: { CORS_ORIGINS: '*' } });
    const res = await preflight(`${any.url}/things`, 'https://whoever.example');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
  });
});
