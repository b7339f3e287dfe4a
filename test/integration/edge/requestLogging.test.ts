import { describe, expect, it } from 'vitest';
import { postJson, startEdge, testRouter } from './support.js';

const routes = () =>
  testRouter((r) => {
    r.get('/things/:id', (ctx) => {
      ctx.body = { id: ctx.params.id };
    });
  });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('request logging and X-Request-Id', () => {
  it('writes one JSON line per request with method, path, route, status, duration and request id', async () => {
    const edge = await startEdge({ routers: [routes()] });
    const res = await fetch(`${edge.url}/things/42?token=secret`, { headers: { 'x-request-id': 'abc-123' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('abc-123');
    const line = await edge.waitForLog((l) => l.msg === 'request');
    expect(line).toMatchObject({
      level: 30,
      requestId: 'abc-123',
      method: 'GET',
      path: '/things/42',
      route: '/things/:id',
      status: 200,
      aborted: false,
      service: 'smartspec-edge',
    });
    expect(typeof line.durationMs).toBe('number');
    expect(line.durationMs as number).toBeGreaterThanOrEqual(0);
    // The query string may carry secrets: it is not logged.
    expect(JSON.stringify(edge.logs)).not.toContain('secret');
    expect(edge.logs.filter((l) => l.msg === 'request')).toHaveLength(1);
  });

  it('generates a request id when none (or an unsafe one) is sent', async () => {
    const edge = await startEdge({ routers: [routes()] });
    const plain = await fetch(`${edge.url}/things/1`);
    expect(plain.headers.get('x-request-id')).toMatch(UUID);
    const unsafe = await fetch(`${edge.url}/things/1`, { headers: { 'x-request-id': 'x'.repeat(500) } });
    expect(unsafe.headers.get('x-request-id')).toMatch(UUID);
    const spaced = await fetch(`${edge.url}/things/1`, { headers: { 'x-request-id': 'a b {"level":60}' } });
    expect(spaced.headers.get('x-request-id')).toMatch(UUID);
    const id = plain.headers.get('x-request-id');
    await edge.waitForLog((l) => l.msg === 'request' && l.requestId === id);
  });

  it('logs probes at debug level so they do not flood info logs', async () => {
    const edge = await startEdge({ routers: [routes()] });
    await fetch(`${edge.url}/healthz`);
    const line = await edge.waitForLog((l) => l.msg === 'request' && l.path === '/healthz');
    expect(line.level).toBe(20);
  });
});

describe('middleware order, observed from outside', () => {
  it('the log line carries the final status of a 413, 415, 400, 404, 405, 500 and 429', async () => {
    const router = testRouter((r) => {
      r.post('/things', (ctx) => {
        ctx.body = {};
      });
      r.get('/fail', () => {
        throw new Error('nope');
      });
    });
    const edge = await startEdge({ routers: [router], env: { MAX_BODY_BYTES: '32', RATE_LIMIT_MAX: '3' } });
    const cases: [string, () => Promise<Response>][] = [
      ['r413', () => postJson(`${edge.url}/things`, { pad: 'x'.repeat(64) }, { 'x-request-id': 'r413' })],
      ['r415', () => fetch(`${edge.url}/things`, { method: 'POST', headers: { 'content-type': 'text/plain', 'x-request-id': 'r415' }, body: 'x' })],
      ['r400', () => fetch(`${edge.url}/things`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'r400' }, body: '{' })],
      ['r404', () => fetch(`${edge.url}/nope`, { headers: { 'x-request-id': 'r404' } })],
      ['r405', () => fetch(`${edge.url}/things`, { headers: { 'x-request-id': 'r405' } })],
      ['r500', () => fetch(`${edge.url}/fail`, { headers: { 'x-request-id': 'r500' } })],
      // 404, 405, 500 spent the budget of 3: this one is limited.
      ['r429', () => fetch(`${edge.url}/fail`, { headers: { 'x-request-id': 'r429' } })],
    ];
    for (const [id, send] of cases) {
      const res = await send();
      const expected = Number(id.slice(1));
      expect(res.status, id).toBe(expected);
      // Logging sits inside the error handler, yet sees what the client got, and the id reached the problem body.
      const line = await edge.waitForLog((l) => l.msg === 'request' && l.requestId === id);
      expect(line.status, id).toBe(expected);
      expect((await res.json()).requestId, id).toBe(id);
    }
  });

  it('validation precedes the limiter (refused bodies spend no budget); CORS follows it (a 429 has no CORS headers)', async () => {
    const router = testRouter((r) => r.post('/things', (ctx) => { ctx.body = {}; }));
    const origin = 'https://app.example.com';
    const edge = await startEdge({ routers: [router], env: { RATE_LIMIT_MAX: '1', MAX_BODY_BYTES: '16', CORS_ORIGINS: origin } });
    for (let i = 0; i < 3; i++) {
      expect((await postJson(`${edge.url}/things`, { pad: 'x'.repeat(64) })).status).toBe(413);
    }
    const ok = await postJson(`${edge.url}/things`, {}, { origin });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe(origin);
    const limited = await postJson(`${edge.url}/things`, {}, { origin });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('access-control-allow-origin')).toBeNull();
    expect(limited.headers.get('x-request-id')).toBeTruthy();
  });

  it('a route error keeps the CORS headers (CORS is outside the routes)', async () => {
    const origin = 'https://app.example.com';
    const router = testRouter((r) => r.get('/fail', () => { throw new Error('x'); }));
    const edge = await startEdge({ routers: [router], env: { CORS_ORIGINS: origin } });
    const res = await fetch(`${edge.url}/fail`, { headers: { origin } });
    expect(res.status).toBe(500);
    expect(res.headers.get('access-control-allow-origin')).toBe(origin);
  });
});
