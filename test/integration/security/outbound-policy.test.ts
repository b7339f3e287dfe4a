/**
 * The outbound policy of http steps against a real HTTP server on loopback
 * that counts every request it receives: refused destinations are refused
 * before a byte is sent (the server sees nothing), at every redirect hop too,
 * and HTTP_STEP_ALLOW opens exactly what it names. Then the same through the
 * service over real HTTP and a real nats-server, with the policy on.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllowList } from '../../../src/security/outboundPolicy.js';
import { httpExecutor } from '../../../src/steps/http.js';
import { useNatsServer } from '../../support/nats.js';
import { http, useService, waitForStatus } from '../../support/service.js';

const hits = new Map<string, number>();
const authorizations: (string | undefined)[] = [];
let server: Server;
let port = 0;
const totalHits = () => [...hits.values()].reduce((a, b) => a + b, 0);

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    authorizations.push(req.headers.authorization);
    if (url.pathname === '/redirect') {
      res.writeHead(302, { location: url.searchParams.get('to')!.replace('PORT', String(port)) }).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, path: url.pathname }));
  });
  // '::' listens on IPv6 and IPv4 at once, so every loopback spelling would reach it.
  await new Promise<void>((res) => server.listen(0, '::', res));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((res) => server.close(() => res())));

async function call(allow: string, url: string, headers?: Record<string, string>) {
  // As the runner hands it over: templates resolved (so the scheme was not checked at validation).
  const step = { id: 'call', type: 'http', request: { method: 'GET', url, ...(headers ? { headers } : {}) }, onError: 'fail' };
  const run = httpExecutor(parseAllowList(allow));
  return run({ executionId: 'e', workflowId: 'wf', step: step as never, attempt: 1, signal: new AbortController().signal, usage: { promptTokens: 0, completionTokens: 0, totalTokens: 0 } });
}

async function refusal(allow: string, url: string) {
  try {
    await call(allow, url);
  } catch (err) {
    return err as { code: string; retryable: boolean; message: string };
  }
  throw new Error(`${url} was not refused`);
}

describe('with no exceptions', () => {
  const loopbackForms = [
    'http://127.0.0.1:PORT/hit',
    'http://2130706433:PORT/hit',
    'http://0177.0.0.1:PORT/hit',
    'http://0x7f000001:PORT/hit',
    'http://127.1:PORT/hit',
    'http://127.0.0.2:PORT/hit',
    'http://[::ffff:127.0.0.1]:PORT/hit',
    'http://[::ffff:7f00:1]:PORT/hit',
    'http://[::1]:PORT/hit',
    'http://0.0.0.0:PORT/hit',
    'http://[::]:PORT/hit',
    'http://localhost:PORT/hit', // refused after DNS resolution
    'https://localhost:PORT/hit',
  ];

  it.each(loopbackForms)('refuses %s before any byte reaches the listening server', async (form) => {
    const err = await refusal('', form.replace('PORT', String(port)));
    expect(err).toMatchObject({ code: 'HTTP_DESTINATION_DENIED', retryable: false });
    expect(err.message).toMatch(/HTTP_STEP_ALLOW/);
    expect(totalHits()).toBe(0);
  });

  it.each([
    'http://10.0.0.1/', 'http://172.16.0.1/', 'http://192.168.1.1/', 'http://100.64.0.1/', 'http://169.254.169.254/latest/meta-data/',
    'http://[fe80::1]/', 'http://[fc00::1]/', 'http://[fd00::1]/', 'http://224.0.0.1/', 'http://[ff02::1]/', 'http://[::ffff:10.0.0.1]/',
  ])('refuses %s (private, shared, link-local, unique-local, multicast)', async (url) => {
    expect(await refusal('', url)).toMatchObject({ code: 'HTTP_DESTINATION_DENIED' });
  });

  it('refuses other schemes at run time too (a URL built from a template)', async () => {
    expect(await refusal('', 'file:///etc/passwd')).toMatchObject({ code: 'HTTP_DESTINATION_DENIED', message: expect.stringMatching(/scheme 'file'/) });
  });
});

describe('redirects', () => {
  it('a redirect from an allowed host to loopback is refused: the target sees nothing', async () => {
    hits.clear();
    for (const to of ['http://127.0.0.1:PORT/target', 'http://[::ffff:127.0.0.1]:PORT/target', 'http://2130706433:PORT/target']) {
      const err = await refusal('localhost', `http://localhost:${port}/redirect?to=${encodeURIComponent(to)}`);
      expect(err).toMatchObject({ code: 'HTTP_DESTINATION_DENIED' });
    }
    expect(hits.get('/redirect')).toBe(3);
    expect(hits.get('/target')).toBeUndefined();
  });

  it('a redirect within what is allowed is followed', async () => {
    hits.clear();
    const res = await call('127.0.0.1', `http://127.0.0.1:${port}/redirect?to=${encodeURIComponent('http://127.0.0.1:PORT/target')}`);
    expect(res.output).toEqual({ status: 200, body: { ok: true, path: '/target' } });
    expect(hits.get('/target')).toBe(1);
  });

  it('the Authorization header does not follow a redirect to another origin', async () => {
    authorizations.length = 0;
    const to = encodeURIComponent('http://localhost:PORT/target');
    await call('127.0.0.1,localhost', `http://127.0.0.1:${port}/redirect?to=${to}`, { Authorization: 'Bearer t0ken' });
    expect(authorizations).toEqual(['Bearer t0ken', undefined]);
  });
});

describe('HTTP_STEP_ALLOW', () => {
  it('opens exactly what it names', async () => {
    hits.clear();
    expect((await call('127.0.0.1', `http://127.0.0.1:${port}/hit`)).output).toMatchObject({ status: 200 });
    expect(hits.get('/hit')).toBe(1);
    // The same server by other addresses stays closed.
    expect(await refusal('127.0.0.1', `http://127.0.0.2:${port}/hit`)).toMatchObject({ code: 'HTTP_DESTINATION_DENIED' });
    expect(await refusal('127.0.0.1', `http://[::1]:${port}/hit`)).toMatchObject({ code: 'HTTP_DESTINATION_DENIED' });
    expect(hits.get('/hit')).toBe(1);
    // A range opens its addresses; a host name opens that name.
    expect((await call('127.0.0.0/8', `http://127.0.0.2:${port}/hit`)).output).toMatchObject({ status: 200 });
    expect((await call('localhost', `http://localhost:${port}/hit`)).output).toMatchObject({ status: 200 });
    expect(hits.get('/hit')).toBe(3);
  });
});

describe('through the service (real NATS, real HTTP), with the policy on', () => {
  const nats = useNatsServer();
  const start = useService(nats);
  let base = '';
  beforeAll(async () => {
    base = (await start({ env: { HTTP_STEP_ALLOW: '' } })).url;
  });

  it('a step calling loopback fails with HTTP_DESTINATION_DENIED on its first attempt, never retried, and the server sees nothing', async () => {
    hits.clear();
    const definition = { id: 'ssrf', steps: [{ id: 'call', type: 'http', request: { url: `http://0177.0.0.1:${port}/hit` }, retry: { maxAttempts: 3, initialDelayMs: 1 } }] };
    const submit = await http(base, 'POST', '/executions', { definition });
    expect(submit.status).toBe(202);
    const done = await waitForStatus(base, submit.json.executionId, ['COMPLETED', 'FAILED']);
    expect(done.status).toBe('FAILED');
    expect(done.error).toMatchObject({ code: 'HTTP_DESTINATION_DENIED', retryable: false });
    expect(done.steps.call.attempts).toBe(1);
    expect(totalHits()).toBe(0);
  });

  it('an invalid HTTP_STEP_ALLOW stops the service at start, naming the variable and the entry', async () => {
    await expect(start({ env: { HTTP_STEP_ALLOW: '127.0.0.1, 10.0.0.0/99' } })).rejects.toThrow(/HTTP_STEP_ALLOW: '10.0.0.0\/99' is not a CIDR range/);
  });

  it.each(['file:///etc/passwd', 'gopher://127.0.0.1:70/_x', 'ftp://example.com/'])('refuses %s at submission: 422 INVALID_DEFINITION naming the field', async (url) => {
    const r = await http(base, 'POST', '/executions', { definition: { id: 'scheme', steps: [{ id: 'call', type: 'http', request: { url } }] } });
    expect(r.status).toBe(422);
    expect(r.json.code).toBe('INVALID_DEFINITION');
    expect(JSON.stringify(r.json.errors)).toMatch(/steps\[0\]\.request\.url.*scheme/);
  });
});
