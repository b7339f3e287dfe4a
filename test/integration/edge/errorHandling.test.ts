import { describe, expect, it } from 'vitest';
import {
  CheckpointNotFoundError,
  ConcurrencyError,
  DefinitionError,
  ExecutionNotFoundError,
  ExecutionOwnedError,
  InvalidExecutionStateError,
  InvalidInputError,
  SmartSpecError,
  WorkflowNotFoundError,
} from '../../../src/errors.js';
import { securityHeadersOf, SECURITY_HEADERS, startEdge, testRouter } from './support.js';

const failing = () =>
  testRouter((r) => {
    r.get('/boom', () => {
      throw new Error('db password is hunter2 at /srv/secret/path.ts');
    });
    r.get('/boom-async', async (ctx) => {
      ctx.set('ETag', '"v1"');
      ctx.set('Content-Disposition', 'attachment; filename=x.bin');
      await new Promise((r) => setTimeout(r, 1));
      throw new TypeError('cannot read properties of undefined (reading internalField)');
    });
    r.get('/string-thrown', () => {
      throw 'a bare string with internals';
    });
    r.get('/definition', () => {
      throw new DefinitionError([{ path: 'steps[1].id', message: "duplicate step id 'draft'" }]);
    });
    r.get('/execution', () => {
      throw new ExecutionNotFoundError('ex-404');
    });
    r.get('/conflict', () => {
      throw new ConcurrencyError('ex-1', 7);
    });
    r.get('/retryable-unknown', () => {
      throw new SmartSpecError('NATS_DISCONNECTED', 'nats at 10.0.0.5:4222 refused', { retryable: true });
    });
    r.get('/forbidden', (ctx) => {
      ctx.throw(403, 'you may not', { headers: { 'WWW-Authenticate': 'Bearer' } });
    });
    r.get('/hidden-5xx', (ctx) => {
      ctx.throw(502, 'upstream 10.1.2.3 said no');
    });
    r.post('/only-post', (ctx) => {
      ctx.body = { ok: true };
    });
  });

describe('error handling → problem+json', () => {
  it('an Error thrown in a route is a 500 problem with no message or stack, logged with the request id', async () => {
    const edge = await startEdge({ routers: [failing()] });
    for (const path of ['/boom', '/boom-async', '/string-thrown']) {
      const res = await fetch(`${edge.url}${path}`, { headers: { 'x-request-id': `req-${path.slice(1)}` } });
      expect(res.status).toBe(500);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(securityHeadersOf(res)).toEqual(SECURITY_HEADERS);
      const text = await res.text();
      expect(text).not.toMatch(/hunter2|secret|internalField|bare string|at .*\.ts/);
      expect(JSON.parse(text)).toEqual({
        type: 'urn:smartspec:problem:internal-server-error',
        title: 'Internal Server Error',
        status: 500,
        detail: expect.stringContaining('request id'),
        instance: path,
        code: 'INTERNAL_SERVER_ERROR',
        requestId: `req-${path.slice(1)}`,
      });
    }
    // The server log has what the client does not: the message and stack, with the request id.
    const logged = await edge.waitForLog((l) => l.msg === 'request failed' && l.requestId === 'req-boom');
    expect(JSON.stringify(logged.err)).toContain('hunter2');
    expect((logged.err as { stack: string }).stack).toContain('errorHandling.test.ts');
  });

  it('drops representation headers the failed route had set', async () => {
    const edge = await startEdge({ routers: [failing()] });
    const res = await fetch(`${edge.url}/boom-async`);
    expect(res.status).toBe(500);
    expect(res.headers.get('etag')).toBeNull();
    expect(res.headers.get('content-disposition')).toBeNull();
  });

  it.each([
    ['/definition', 422, 'INVALID_DEFINITION'],
    ['/execution', 404, 'EXECUTION_NOT_FOUND'],
    ['/conflict', 409, 'CONCURRENT_WRITE'],
    ['/retryable-unknown', 503, 'SERVICE_UNAVAILABLE'],
    ['/forbidden', 403, 'FORBIDDEN'],
    ['/hidden-5xx', 502, 'BAD_GATEWAY'],
  ])('GET %s → %i %s', async (path, status, code) => {
    const edge = await startEdge({ routers: [failing()] });
    const res = await fetch(`${edge.url}${path}`);
    expect(res.status).toBe(status);
    expect(securityHeadersOf(res)).toEqual(SECURITY_HEADERS);
    const body = await res.json();
    expect(body).toMatchObject({ status, code, instance: path });
    expect(JSON.stringify(body)).not.toMatch(/10\.0\.0\.5|10\.1\.2\.3/);
  });

  it('a SmartSpecError keeps its detail and structured fields; definition issues are `errors`', async () => {
    const edge = await startEdge({ routers: [failing()] });
    const def = await (await fetch(`${edge.url}/definition`)).json();
    expect(def).toMatchObject({
      type: 'urn:smartspec:problem:invalid-definition',
      detail: "steps[1].id: duplicate step id 'draft'",
      errors: [{ path: 'steps[1].id', message: "duplicate step id 'draft'" }],
    });
    expect(def.issues).toBeUndefined();
    const ex = await (await fetch(`${edge.url}/execution`)).json();
    expect(ex).toMatchObject({ detail: "execution 'ex-404' not found", executionId: 'ex-404' });
    const forbidden = await fetch(`${edge.url}/forbidden`);
    expect(forbidden.headers.get('www-authenticate')).toBe('Bearer');
    expect((await forbidden.json()).detail).toBe('you may not');
  });

  it('an unknown route is a 404 problem; a wrong method on a known path is a 405 with Allow', async () => {
    const edge = await startEdge({ routers: [failing()] });
    const missing = await fetch(`${edge.url}/nowhere`);
    expect(missing.status).toBe(404);
    expect(securityHeadersOf(missing)).toEqual(SECURITY_HEADERS);
    expect(await missing.json()).toMatchObject({ code: 'NOT_FOUND', detail: 'no route matches GET /nowhere' });

    const wrong = await fetch(`${edge.url}/only-post`);
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('POST');
    expect(await wrong.json()).toMatchObject({ code: 'METHOD_NOT_ALLOWED', status: 405 });
  });

  it('maps every product error class to its status', async () => {
    const cases: [SmartSpecError, number][] = [
      [new InvalidInputError('bad --input'), 400],
      [new WorkflowNotFoundError('w'), 404],
      [new CheckpointNotFoundError('ex', 'cp'), 404],
      [new InvalidExecutionStateError('already completed'), 409],
      [new ExecutionOwnedError('ex', 'pid 7'), 409],
    ];
    const router = testRouter((r) => cases.forEach(([err], i) => r.get(`/e${i}`, () => { throw err; })));
    const edge = await startEdge({ routers: [router] });
    const got = await Promise.all(cases.map(async (_, i) => (await fetch(`${edge.url}/e${i}`)).status));
    expect(got).toEqual(cases.map(([, s]) => s));
  });
});
