import { request as httpRequest } from 'node:http';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { validate } from '../../../src/edge/middleware/validate.js';
import { postJson, securityHeadersOf, SECURITY_HEADERS, startEdge, testRouter } from './support.js';

const StartBody = z.object({ workflowId: z.string().min(1), input: z.record(z.string(), z.unknown()).default({}) });
const ListQuery = z.object({ limit: z.coerce.number().int().positive().default(10) });
const Params = z.object({ id: z.string().regex(/^ex-/) });

function echoRouter() {
  return testRouter((r) => {
    for (const route of [r.post, r.put, r.patch]) {
      route.call(r, '/echo', (ctx) => {
        ctx.body = { received: ctx.request.body ?? null };
      });
    }
    r.post('/start', validate({ body: StartBody }), (ctx) => {
      const { body } = ctx.state.validated;
      ctx.status = 202;
      ctx.body = body;
    });
    r.get('/items/:id', validate({ params: Params, query: ListQuery }), (ctx) => {
      ctx.body = ctx.state.validated;
    });
  });
}

describe('request validation (413 / 415 / 400) and validate() (422)', () => {
  it('parses a JSON body for the route', async () => {
    const edge = await startEdge({ routers: [echoRouter()] });
    const res = await postJson(`${edge.url}/echo`, { a: [1, 2] });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ received: { a: [1, 2] } });
  });

  it('answers 413 for an 11 MB body with the default 10 MB limit, then keeps serving', async () => {
    const edge = await startEdge({ routers: [echoRouter()] });
    const big = JSON.stringify({ blob: 'x'.repeat(11 * 1024 * 1024) });
    const res = await fetch(`${edge.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const problem = await res.json();
    expect(problem).toMatchObject({ status: 413, code: 'PAYLOAD_TOO_LARGE', limitBytes: 10 * 1024 * 1024 });
    expect(securityHeadersOf(res)).toEqual(SECURITY_HEADERS);

    const after = await postJson(`${edge.url}/echo`, { ok: true });
    expect(after.status).toBe(200);
    expect(await after.json()).toEqual({ received: { ok: true } });
  });

  it('takes a body of exactly MAX_BODY_BYTES (10,485,760 bytes) and refuses one byte more with 413', async () => {
    const edge = await startEdge({ routers: [echoRouter()] });
    const limit = 10 * 1024 * 1024;
    const bodyOf = (bytes: number) => `{"blob":"${'x'.repeat(bytes - '{"blob":""}'.length)}"}`;
    const exact = bodyOf(limit);
    expect(Buffer.byteLength(exact)).toBe(limit);
    const ok = await fetch(`${edge.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: exact });
    expect(ok.status).toBe(200);
    expect((await ok.json()).received.blob).toHaveLength(limit - '{"blob":""}'.length);

    const over = await fetch(`${edge.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodyOf(limit + 1) });
    expect(over.status).toBe(413);
    expect(await over.json()).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', limitBytes: limit });
  });

  it('answers 413 for a chunked body (no Content-Length) once it passes MAX_BODY_BYTES', async () => {
    const edge = await startEdge({ routers: [echoRouter()], env: { MAX_BODY_BYTES: '1024' } });
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${edge.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write(`{"blob":"${'y'.repeat(4096)}`);
      req.end('"}');
    });
    expect(status).toBe(413);
    // A body just under the limit still passes.
    const ok = await postJson(`${edge.url}/echo`, { blob: 'z'.repeat(900) });
    expect(ok.status).toBe(200);
  });

  it('answers 415 for a text/plain body and for a body without Content-Type', async () => {
    const edge = await startEdge({ routers: [echoRouter()] });
    const res = await fetch(`${edge.url}/echo`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"a":1}' });
    expect(res.status).toBe(415);
    expect(securityHeadersOf(res)).toEqual(SECURITY_HEADERS);
    expect(await res.json()).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', detail: expect.stringContaining('text/plain') });

    const bare = await fetch(`${edge.url}/echo`, { method: 'POST', body: new Uint8Array([123, 125]) });
    expect(bare.status).toBe(415);
  });

  it.each(['PUT', 'PATCH'])('answers 415 for a text/plain %s body, with the security headers', async (method) => {
    const edge = await startEdge({ routers: [echoRouter()] });
    const res = await fetch(`${edge.url}/echo`, { method, headers: { 'content-type': 'text/plain' }, body: '{"a":1}' });
    expect(res.status).toBe(415);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(securityHeadersOf(res)).toEqual(SECURITY_HEADERS);
    expect(await res.json()).toMatchObject({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', detail: "Content-Type 'text/plain' is not supported; send application/json" });
    // The same route takes the same body as JSON.
    const json = await fetch(`${edge.url}/echo`, { method, headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    expect(json.status).toBe(200);
    expect(await json.json()).toEqual({ received: { a: 1 } });
  });

  it('accepts application/json with a charset and +json media types', async () => {
    const edge = await startEdge({ routers: [echoRouter()] });
    const a = await fetch(`${edge.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"a":1}' });
    const b = await fetch(`${edge.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/merge-patch+json' }, body: '{"b":2}' });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(await b.json()).toEqual({ received: { b: 2 } });
  });

  it('answers 400 for malformed JSON, without echoing the body', async () => {
    const edge = await startEdge({ routers: [echoRouter()] });
    const res = await fetch(`${edge.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a": SECRET-TOKEN' });
    expect(res.status).toBe(400);
    const text = await res.text();
    expect(JSON.parse(text)).toMatchObject({ status: 400, code: 'MALFORMED_JSON' });
    expect(text).not.toContain('SECRET-TOKEN');
  });

  it('validate() answers 422 naming every offending field, located in body, query or params', async () => {
    const edge = await startEdge({ routers: [echoRouter()] });
    const res = await postJson(`${edge.url}/start`, { workflowId: 42 });
    expect(res.status).toBe(422);
    const problem = await res.json();
    expect(problem).toMatchObject({ code: 'VALIDATION_FAILED', status: 422 });
    expect(problem.errors).toEqual([{ path: 'body.workflowId', message: expect.any(String) }]);

    const bad = await fetch(`${edge.url}/items/nope?limit=-3`);
    expect(bad.status).toBe(422);
    const paths = (await bad.json()).errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(['params.id', 'query.limit']);
  });

  it('validate() hands the route parsed, defaulted values', async () => {
    const edge = await startEdge({ routers: [echoRouter()] });
    const res = await postJson(`${edge.url}/start`, { workflowId: 'spec-review' });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ workflowId: 'spec-review', input: {} });
    const items = await fetch(`${edge.url}/items/ex-1?limit=5`);
    expect(await items.json()).toEqual({ params: { id: 'ex-1' }, query: { limit: 5 } });
  });
});

describe('malformed JSON reasons', () => {
  it.each([
    ['{"a": 1,', 'syntax error at position 8'],
    ['{"a": 1', 'syntax error at position 7'],
    ['"just a string"', 'the top-level value must be an object or an array'],
    ['{"__proto__": {"x": 1}}', 'forbidden __proto__ key'],
  ])('%s → %s', async (body, reason) => {
    const edge = await startEdge({ routers: [testRouter((r) => r.post('/echo', (ctx) => { ctx.body = {}; }))] });
    const res = await fetch(`${edge.url}/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(res.status).toBe(400);
    expect((await res.json()).detail).toBe(`request body is not valid JSON: ${reason}`);
  });
});
