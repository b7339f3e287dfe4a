/**
 * Bad input over real HTTP: each refusal has its documented status, an
 * RFC 9457 problem+json body with a precise `detail` (and `errors` naming the
 * offending path where there is one), the security headers, and no stack
 * trace; and the service keeps serving afterwards (each case is followed by a
 * successful request on the same service).
 */
import { Agent, request, type ClientRequest } from 'node:http';
import { beforeAll, describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';
import { expectProblem, forkJoin, uniq, type HttpResult } from './http-helpers.js';

const nats = useNatsServer();
const start = useService(nats);
let base = '';
beforeAll(async () => {
  base = (await start()).url;
});

/** The service still serves: a full submission runs to COMPLETED. */
async function stillServes() {
  const r = await http(base, 'POST', '/executions', { definition: { id: uniq('after'), steps: [{ id: 'a', type: 'transform', value: 1 }] } });
  expect(r.status, r.text).toBe(202);
  expect((await waitForStatus(base, r.json.executionId, ['COMPLETED', 'FAILED'])).status).toBe('COMPLETED');
}

/** POST raw bytes with explicit headers (fetch would pick a content type for a string body). */
async function raw(method: string, path: string, body: string | Blob, headers: Record<string, string>): Promise<HttpResult> {
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let json: any;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, json, text };
}

describe('transport-level refusals', () => {
  it('malformed JSON → 400 MALFORMED_JSON, saying where, without echoing the body', async () => {
    const r = await raw('POST', '/executions', '{"definition": {"id": "x", "steps": [SECRET-TOKEN', { 'content-type': 'application/json' });
    const p = expectProblem(r, 400, 'MALFORMED_JSON');
    // Node 20's message for an unexpected token carries no position: the detail says what, not where.
    expect(p.detail).toMatch(/^request body is not valid JSON: syntax error( at position \d+)?$/);
    expect(p.instance).toBe('/executions');
    expect(r.text).not.toContain('SECRET-TOKEN');
    await stillServes();

    const comma = await raw('POST', '/executions', '{"a":1,}', { 'content-type': 'application/json' });
    expect(expectProblem(comma, 400, 'MALFORMED_JSON').detail).toBe('request body is not valid JSON: syntax error at position 7');
    const cut = await raw('POST', '/executions', '{"workflowId": ', { 'content-type': 'application/json' });
    expect(expectProblem(cut, 400, 'MALFORMED_JSON').detail).toBe('request body is not valid JSON: unexpected end of input');
    await stillServes();
  });

  it('a JSON scalar at the top level → 400 naming the rule', async () => {
    const r = await raw('POST', '/executions', '"just a string"', { 'content-type': 'application/json' });
    expect(expectProblem(r, 400, 'MALFORMED_JSON').detail).toBe('request body is not valid JSON: the top-level value must be an object or an array');
    await stillServes();
  });

  it('text/plain → 415 naming the type and what to send', async () => {
    const r = await raw('POST', '/executions', JSON.stringify({ workflowId: 'x' }), { 'content-type': 'text/plain' });
    const p = expectProblem(r, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(p.detail).toBe("Content-Type 'text/plain' is not supported; send application/json");
    await stillServes();
  });

  it('a body that is not the brotli it claims to be → 400, not 500 (fuzz find: PATCH, content-encoding br)', async () => {
    const r = await raw('PATCH', '/executions', '{}', { 'content-encoding': 'br', 'content-type': 'application/json;;;' });
    expect(expectProblem(r, 400, 'MALFORMED_JSON').detail).toBe('request body is not valid JSON: the body could not be decoded with its Content-Encoding');
    const post = await raw('POST', '/executions', '{"workflowId":"x"}', { 'content-encoding': 'br', 'content-type': 'application/json' });
    expectProblem(post, 400, 'MALFORMED_JSON');
    await stillServes();
  });

  it('a body with no content type → 415', async () => {
    const r = await raw('POST', '/workflows', new Blob(['{"id":"x"}']), {});
    expect(expectProblem(r, 415, 'UNSUPPORTED_MEDIA_TYPE').detail).toBe('missing Content-Type; send application/json');
    await stillServes();
  });

  it('an 11 MB body → 413 naming the limit, and the connection is closed', async () => {
    const big = JSON.stringify({ definition: forkJoin(uniq('big')), input: { blob: 'x'.repeat(11 * 1024 * 1024) } });
    const r = await oversize((req) => {
      req.setHeader('content-length', Buffer.byteLength(big));
      req.end(big);
    });
    const p = expectProblem(r, 413, 'PAYLOAD_TOO_LARGE');
    expect(p.detail).toBe('request body exceeds the limit of 10485760 bytes');
    expect(p.limitBytes).toBe(10485760);
    expect(r.headers.get('connection')).toBe('close');
    expect(r.socketClosedMs, 'the server closes the connection it did not read').toBeLessThan(2000);
    await stillServes();
  });

  it('an 11 MB body sent chunked (no Content-Length) → 413, and the connection is closed', async () => {
    const chunk = 'x'.repeat(1024 * 1024);
    const r = await oversize((req) => {
      req.write('{"input": {"blob": "');
      for (let i = 0; i < 11; i++) req.write(chunk);
      req.end('"}, "workflowId": "x"}');
    });
    expect(expectProblem(r, 413, 'PAYLOAD_TOO_LARGE').detail).toBe('request body exceeds the limit of 10485760 bytes');
    // The unread rest of the body stays on the socket: unless the server closes it, the
    // connection hangs (the client cannot finish sending, the server never reads it).
    expect(r.headers.get('connection')).toBe('close');
    expect(r.socketClosedMs, 'the server closes the connection it did not read').toBeLessThan(2000);
    await stillServes();
  });
});

/**
 * POST /executions with a body the caller writes, over node:http on a fresh
 * keep-alive socket: the answer, and how long after it the socket was closed
 * (Infinity when still open 2 s later; the socket is then destroyed here).
 */
function oversize(write: (req: ClientRequest) => void): Promise<HttpResult & { socketClosedMs: number }> {
  return new Promise((resolve, reject) => {
    // A keep-alive client (what browsers and fetch are): the server must close the socket itself.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const req = request(`${base}/executions`, { method: 'POST', agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const answeredAt = Date.now();
        const text = Buffer.concat(chunks).toString('utf8');
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        const socket = req.socket!;
        const finish = (socketClosedMs: number) => (agent.destroy(), resolve({ status: res.statusCode!, headers, json: JSON.parse(text), text, socketClosedMs }));
        if (socket.destroyed) return finish(0);
        const timer = setTimeout(() => {
          socket.destroy();
          finish(Infinity);
        }, 2000);
        socket.once('close', () => {
          clearTimeout(timer);
          finish(Date.now() - answeredAt);
        });
      });
    });
    // The server may close while the body is still being sent: that is its right after a 413.
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'EPIPE' || (err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    write(req);
  });
}

describe('field-level refusals (422) name the path', () => {
  it('an unknown step type in an inline definition → definition.steps[1].type', async () => {
    const wf = uniq('bad-type');
    const r = await http(base, 'POST', '/executions', { definition: { id: wf, steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'teleport' }] } });
    const p = expectProblem(r, 422, 'INVALID_DEFINITION');
    expect(p.errors).toEqual([{ path: 'definition.steps[1].type', message: expect.stringMatching(/^unknown step type 'teleport' \(one of .*transform.*\)$/) }]);
    expect(p.detail).toMatch(/^definition\.steps\[1\]\.type: unknown step type 'teleport'/);
    expect((await http(base, 'GET', `/executions?workflowId=${wf}`)).json.executions).toEqual([]);
    await stillServes();
  });

  it('a non-consecutive parallel group → definition.parallel[0]', async () => {
    const r = await http(base, 'POST', '/executions', {
      definition: {
        id: uniq('bad-group'),
        steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'transform', value: 2 }, { id: 'c', type: 'transform', value: 3 }],
        parallel: [['a', 'c']],
      },
    });
    const p = expectProblem(r, 422, 'INVALID_DEFINITION');
    expect(p.errors).toEqual([{ path: 'definition.parallel[0]', message: "steps of a group must be consecutive in 'steps': 'b' stand between 'a' and 'c'" }]);
    await stillServes();
  });

  it('several problems at once are all listed, each with its path', async () => {
    const r = await http(base, 'POST', '/executions', {
      definition: {
        id: uniq('bad-many'),
        steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'a', type: 'transform', value: 2 }, { id: 'c', type: 'transform', value: 3 }],
        parallel: [['ghost']],
      },
    });
    const p = expectProblem(r, 422, 'INVALID_DEFINITION');
    expect(p.errors!.map((e) => e.path).sort()).toEqual(['definition.parallel[0][0]', 'definition.steps[1].id']);
    expect(p.detail).toContain("definition.parallel[0][0]: unknown step id 'ghost'");
    await stillServes();
  });

  it('a template referring to an unknown step → the field path', async () => {
    const r = await http(base, 'POST', '/executions', { definition: { id: uniq('bad-tpl'), steps: [{ id: 'a', type: 'transform', value: { x: '{{steps.nope.output}}' } }] } });
    const p = expectProblem(r, 422, 'INVALID_DEFINITION');
    expect(p.errors).toHaveLength(1);
    expect(p.errors![0].path).toMatch(/^definition\.steps\[0\]\.value/);
    expect(p.errors![0].message).toMatch(/unknown step 'nope'/);
    await stillServes();
  });

  it('neither workflowId nor definition → 422 naming the field', async () => {
    const r = await http(base, 'POST', '/executions', { input: { a: 1 } });
    const p = expectProblem(r, 422, 'VALIDATION_FAILED');
    expect(p.errors).toEqual([{ path: 'body.workflowId', message: 'give exactly one of workflowId or definition' }]);
    expect(p.detail).toBe('body.workflowId: give exactly one of workflowId or definition');
    await stillServes();
  });

  it('both workflowId and definition, an unknown field, a bad executionId → 422 naming each', async () => {
    const both = expectProblem(await http(base, 'POST', '/executions', { workflowId: 'x', definition: forkJoin('x') }), 422, 'VALIDATION_FAILED');
    expect(both.errors!.map((e) => e.path)).toEqual(['body.workflowId']);
    const extra = expectProblem(await http(base, 'POST', '/executions', { workflowId: 'x', inputs: {} }), 422, 'VALIDATION_FAILED');
    expect(extra.errors!.map((e) => e.path)).toEqual(['body']);
    expect(extra.detail).toMatch(/inputs/);
    const badId = expectProblem(await http(base, 'POST', '/executions', { workflowId: 'x', executionId: 'has spaces/and slashes' }), 422, 'VALIDATION_FAILED');
    expect(badId.errors).toEqual([{ path: 'body.executionId', message: 'must be 1-128 letters, digits, _ or -' }]);
    await stillServes();
  });

  it('a bad query: ?status=NOPE and ?limit=0 → 422 naming the field', async () => {
    const s = expectProblem(await http(base, 'GET', '/executions?status=NOPE'), 422, 'VALIDATION_FAILED');
    expect(s.errors).toHaveLength(1);
    expect(s.errors![0].path).toBe('query.status');
    expect(s.errors![0].message).toMatch(/COMPLETED/); // lists the valid statuses
    const l = expectProblem(await http(base, 'GET', '/executions?limit=0'), 422, 'VALIDATION_FAILED');
    expect(l.errors).toEqual([{ path: 'query.limit', message: expect.stringMatching(/>=\s*1/) }]);
    const both = expectProblem(await http(base, 'GET', '/executions?limit=abc&status=done'), 422, 'VALIDATION_FAILED');
    expect(both.errors!.map((e) => e.path).sort()).toEqual(['query.limit', 'query.status']);
    const from = expectProblem(await http(base, 'GET', '/executions/some-id/events?from=-1'), 422, 'VALIDATION_FAILED');
    expect(from.errors![0].path).toBe('query.from');
    const version = expectProblem(await http(base, 'GET', '/workflows/x?version=0'), 422, 'VALIDATION_FAILED');
    expect(version.errors![0].path).toBe('query.version');
    expect((await http(base, 'GET', '/executions?status=COMPLETED&limit=5')).status).toBe(200);
    await stillServes();
  });
});

describe('not found', () => {
  it('an unknown execution id → 404 on every execution route', async () => {
    const id = 'no-such-execution-42';
    for (const [method, path] of [
      ['GET', `/executions/${id}`],
      ['GET', `/executions/${id}/events`],
      ['GET', `/executions/${id}/checkpoints`],
      ['POST', `/executions/${id}/cancel`],
      ['POST', `/executions/${id}/resume`],
      ['POST', `/executions/${id}/signals/go`],
    ] as const) {
      const r = await http(base, method, path, method === 'POST' ? {} : undefined);
      const p = expectProblem(r, 404, 'EXECUTION_NOT_FOUND');
      expect(p.detail, `${method} ${path}`).toBe(`execution '${id}' not found`);
      expect(p.instance).toBe(path);
    }
    await stillServes();
  });

  it('an unknown route → 404, a wrong method → 405 with Allow', async () => {
    const r = expectProblem(await http(base, 'GET', '/nope'), 404, 'NOT_FOUND');
    expect(r.detail).toBe('no route matches GET /nope');
    const m = await http(base, 'DELETE', '/workflows');
    const p = expectProblem(m, 405, 'METHOD_NOT_ALLOWED');
    expect(m.headers.get('allow')).toMatch(/GET/);
    expect(p.detail).toMatch(/^DELETE is not allowed on \/workflows; allowed: .*POST/);
    await stillServes();
  });

  it('a path id that is not an execution id → 422 naming params.id', async () => {
    const p = expectProblem(await http(base, 'GET', '/executions/bad%20id!'), 422, 'VALIDATION_FAILED');
    expect(p.errors).toEqual([{ path: 'params.id', message: 'is not an execution id' }]);
    await stillServes();
  });
});
