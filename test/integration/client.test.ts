/**
 * The HTTP client's behaviour where the edge cannot easily be made to
 * misbehave: a real HTTP server started here drops the event stream midway,
 * splits SSE lines across chunks, and answers errors the edge's proxies and
 * load balancers produce (429 with Retry-After, a 502 page in HTML).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NotFoundError, RateLimitedError, ServerError, SmartSpecClient, ValidationError } from '../../src/client/index.js';

const RECORDS = [1, 2, 3, 4, 5].map((seq) => ({ seq, type: seq === 5 ? 'ExecutionCompleted' : 'StepCompleted', at: `2026-01-01T00:00:0${seq}Z` }));
const lastEventIds: (string | undefined)[] = [];
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/executions/e1/events/stream') {
      const lastId = req.headers['last-event-id'] as string | undefined;
      lastEventIds.push(lastId);
      const from = lastId ? Number(lastId) + 1 : Number(url.searchParams.get('from') ?? 1);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('retry: 20\n\n: a comment line\n\n');
      const frame = (r: (typeof RECORDS)[number]) => `id: ${r.seq}\r\nevent: ${r.type}\r\ndata: ${JSON.stringify(r)}\r\n\r\n`;
      if (!lastId) {
        // Two records, the second split across writes mid-line (and between \r and \n), then the connection drops.
        res.write(frame(RECORDS[from - 1]));
        const second = frame(RECORDS[from]);
        const cut = second.indexOf('\r\n') + 1;
        res.write(second.slice(0, 7));
        setTimeout(() => {
          res.write(second.slice(7, cut));
          setTimeout(() => {
            res.write(second.slice(cut));
            setTimeout(() => res.socket!.destroy(), 20);
          }, 20);
        }, 20);
        return;
      }
      for (const r of RECORDS.filter((x) => x.seq >= from)) res.write(frame(r));
      res.end('event: end\ndata: {}\n\n');
      return;
    }
    if (url.pathname === '/executions/limited') {
      res.writeHead(429, { 'content-type': 'application/problem+json', 'retry-after': '7' });
      res.end(JSON.stringify({ type: 'urn:smartspec:problem:rate-limited', title: 'Too Many Requests', status: 429, detail: 'slow down', code: 'RATE_LIMITED' }));
      return;
    }
    if (url.pathname === '/executions/proxy') {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body>Bad Gateway</body></html>');
      return;
    }
    if (url.pathname === '/executions' && req.method === 'POST') {
      res.writeHead(422, { 'content-type': 'application/problem+json', 'x-request-id': 'req-1' });
      res.end(JSON.stringify({ type: 't', title: 'Request validation failed', status: 422, detail: '2 problems', code: 'VALIDATION_FAILED', errors: [{ path: 'body.workflowId', message: 'is not a workflow id' }, { path: 'body', message: 'unknown key' }] }));
      return;
    }
    res.writeHead(404, { 'content-type': 'application/problem+json' });
    res.end(JSON.stringify({ type: 't', title: 'Not Found', status: 404, detail: `no route matches ${req.method} ${url.pathname}`, code: 'NOT_FOUND' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('SmartSpecClient', () => {
  it('events: reads records split across chunks, resumes a dropped stream from Last-Event-ID, ends at `end`', async () => {
    const client = new SmartSpecClient(base);
    const seen = [];
    for await (const e of client.events('e1', { signal: AbortSignal.timeout(10_000) })) seen.push(e);
    expect(seen).toEqual(RECORDS); // each once, in order, none lost at the drop
    expect(lastEventIds).toEqual([undefined, '2']);
  });

  it('events: stops when its signal aborts', async () => {
    const controller = new AbortController();
    const client = new SmartSpecClient(base);
    const seen: number[] = [];
    const reading = (async () => {
      for await (const e of client.events('e1', { signal: controller.signal })) {
        seen.push(e.seq);
        controller.abort(new Error('enough'));
      }
    })();
    await expect(reading).rejects.toThrow('enough');
    expect(seen).toEqual([1]);
  });

  it('refusals are typed: 422 lists every field, 429 carries Retry-After, a proxy\'s HTML 502 is a retryable ServerError', async () => {
    const client = new SmartSpecClient({ baseUrl: `${base}/`, apiKey: 'ssk_x' });
    const invalid = await client.start({ workflowId: 'bad id' }).catch((e: unknown) => e);
    expect(invalid).toBeInstanceOf(ValidationError);
    expect((invalid as ValidationError).errors.map((e) => e.path)).toEqual(['body.workflowId', 'body']);
    expect((invalid as ValidationError).requestId).toBe('req-1');
    const limited = await client.get('limited').catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RateLimitedError);
    expect((limited as RateLimitedError).retryAfterSeconds).toBe(7);
    const proxy = await client.get('proxy').catch((e: unknown) => e);
    expect(proxy).toBeInstanceOf(ServerError);
    expect((proxy as ServerError).retryable).toBe(true);
    expect((proxy as ServerError).code).toBe('HTTP_502');
    expect((proxy as ServerError).detail).toContain('Bad Gateway');
    const missing = await client.workflows.get('nope').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).message).toBe('404 NOT_FOUND: no route matches GET /workflows/nope');
  });
});
