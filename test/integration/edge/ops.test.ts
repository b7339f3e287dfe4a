import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { startEdge, testRouter } from './support.js';

const routes = () =>
  testRouter((r) => {
    r.get('/things/:id', (ctx) => {
      ctx.body = { id: ctx.params.id };
    });
  });

describe('health, readiness, metrics', () => {
  it('/healthz is 200 while the process serves, even when not ready', async () => {
    const edge = await startEdge({ readiness: async () => false });
    const res = await fetch(`${edge.url}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz is 200 when ready (or with no check)', async () => {
    const ready = await startEdge({ readiness: async () => true });
    expect((await fetch(`${ready.url}/readyz`)).status).toBe(200);
    const unchecked = await startEdge();
    expect(await (await fetch(`${unchecked.url}/readyz`)).json()).toEqual({ status: 'ready' });
  });

  it('/readyz is a 503 problem with the reason when the check says not ready', async () => {
    const edge = await startEdge({ readiness: async () => 'NATS unreachable' });
    const res = await fetch(`${edge.url}/readyz`);
    expect(res.status).toBe(503);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ code: 'NOT_READY', detail: 'service not ready: NATS unreachable' });

    const no = await startEdge({ readiness: async () => false });
    expect((await fetch(`${no.url}/readyz`)).status).toBe(503);
  });

  it('/readyz hides a throwing check\'s message and bounds a hanging check', async () => {
    const throwing = await startEdge({
      readiness: async () => {
        throw new Error('connect ECONNREFUSED 10.9.8.7:4222');
      },
    });
    const res = await fetch(`${throwing.url}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.text()).not.toContain('10.9.8.7');

    const hanging = await startEdge({ readiness: () => new Promise(() => {}), readinessTimeoutMs: 50 });
    const started = Date.now();
    const slow = await fetch(`${hanging.url}/readyz`);
    expect(slow.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(1000);
    expect((await slow.json()).detail).toContain('did not answer within 50 ms');
  });

  it('/metrics exposes default metrics and requests by method, route pattern and status', async () => {
    const edge = await startEdge({ routers: [routes()] });
    await fetch(`${edge.url}/things/1`);
    await fetch(`${edge.url}/things/2`);
    await fetch(`${edge.url}/missing/123`);
    await edge.waitForLog((l) => l.msg === 'request' && l.path === '/missing/123');
    const res = await fetch(`${edge.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toContain('http_requests_total{method="GET",route="/things/:id",status="200"} 2');
    expect(text).toContain('http_requests_total{method="GET",route="unmatched",status="404"} 1');
    expect(text).toMatch(/http_request_duration_seconds_count\{method="GET",route="\/things\/:id",status="200"\} 2/);
    expect(text).not.toContain('/things/1');
  });

  it('two apps can share one registry', async () => {
    const registry = new Registry();
    const a = await startEdge({ routers: [routes()], metricsRegistry: registry });
    const b = await startEdge({ routers: [routes()], metricsRegistry: registry });
    await fetch(`${a.url}/things/1`);
    await fetch(`${b.url}/things/1`);
    await b.waitForLog((l) => l.msg === 'request' && l.path === '/things/1');
    await a.waitForLog((l) => l.msg === 'request' && l.path === '/things/1');
    expect(await registry.metrics()).toContain('http_requests_total{method="GET",route="/things/:id",status="200"} 2');
  });
});
