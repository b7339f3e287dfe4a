import { describe, expect, it } from 'vitest';
import { postJson, securityHeadersOf, SECURITY_HEADERS, startEdge, testRouter } from './support.js';

const routes = () =>
  testRouter((r) => {
    r.get('/ok', (ctx) => {
      ctx.body = { ok: true };
    });
    r.post('/ok', (ctx) => {
      ctx.body = { ok: true };
    });
    r.get('/boom', () => {
      throw new Error('boom');
    });
  });

describe('security headers', () => {
  it('are on every response: 200, 404, 405, 413, 415, 500 and 429', async () => {
    const edge = await startEdge({ routers: [routes()], env: { RATE_LIMIT_MAX: '6', MAX_BODY_BYTES: '64' } });
    const responses = {
      200: await fetch(`${edge.url}/ok`),
      404: await fetch(`${edge.url}/missing`),
      405: await fetch(`${edge.url}/ok`, { method: 'DELETE' }),
      413: await postJson(`${edge.url}/ok`, { pad: 'x'.repeat(100) }),
      415: await fetch(`${edge.url}/ok`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hi' }),
      500: await fetch(`${edge.url}/boom`),
    };
    // 200, 404, 405 and 500 spent 4 of 6; 413/415 are refused before the limiter.
    await fetch(`${edge.url}/ok`);
    await fetch(`${edge.url}/ok`);
    const limited = await fetch(`${edge.url}/ok`);
    for (const [status, res] of Object.entries({ ...responses, 429: limited })) {
      expect(res.status, `status ${status}`).toBe(Number(status));
      expect(securityHeadersOf(res), `headers on ${status}`).toEqual(SECURITY_HEADERS);
    }
  });

  it('are exactly the contracted set: helmet extras are off', async () => {
    const edge = await startEdge({ routers: [routes()] });
    const res = await fetch(`${edge.url}/ok`);
    for (const extra of [
      'referrer-policy',
      'cross-origin-opener-policy',
      'cross-origin-resource-policy',
      'origin-agent-cluster',
      'x-dns-prefetch-control',
      'x-download-options',
      'x-permitted-cross-domain-policies',
      'x-powered-by',
    ]) {
      expect(res.headers.get(extra), extra).toBeNull();
    }
  });
});
