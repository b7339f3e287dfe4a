/**
 * Process-level resilience (issue 3): `smartspec serve` as a user runs it — a
 * child process configured from the environment, against a real nats-server,
 * driven over real HTTP. Abusive clients are refused without hurting others:
 * an 11 MB body gets 413, a non-JSON body 415, a flood gets exactly
 * RATE_LIMIT_MAX answers and 429 + Retry-After for the rest, and /healthz
 * answers throughout. With TRUST_PROXY each X-Forwarded-For client has its own
 * budget; without it they share one. And a waiting execution survives its
 * worker being killed: a new worker picks the signal up.
 */
import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../src/cli/service.js';
import type { LogRecord, StoredRecord } from '../../src/log/records.js';
import { replayExecution } from '../../src/log/replay.js';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';
import { http, waitForStatus } from '../support/service.js';
import { freePort, killAll, spawnCli, killChild, until, type Child } from '../support/processes.js';


// ---------------------------------------------------------------- helpers








/** `smartspec serve|edge` on a port of ours; resolves once /healthz answers. */
async function startHttpChild(name: string, role: 'serve' | 'edge', env: Record<string, string>): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  const child = spawnCli(name, role, { PORT: String(port), LOG_LEVEL: 'warn', ...env });
  const url = `http://127.0.0.1:${port}`;
  await until(`${name} to answer /healthz`, async () => {
    if (child.proc.exitCode !== null) throw new Error(`${name} exited (${child.proc.exitCode}): ${child.output().slice(-2000)}`);
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0)) === 200;
  }, 30_000, 100);
  return { child, url };
}

interface RawResponse { status: number; headers: Record<string, string | string[] | undefined>; body: string }

/**
 * POST `size` bytes with node:http, so the answer is read even when the server
 * answers (and closes) before the body is sent: fetch would only report the
 * broken pipe. `declared`: send a Content-Length; otherwise chunked.
 */
function postLarge(url: string, size: number, declared: boolean): Promise<RawResponse> {
  return new Promise((res, rej) => {
    const chunk = Buffer.alloc(64 * 1024, 0x20); // JSON whitespace: only the size can be wrong
    let answered = false;
    const req = httpRequest(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(declared ? { 'content-length': String(size) } : {}) },
      agent: false,
    });
    req.setTimeout(20_000, () => req.destroy(new Error('no answer within 20 s')));
    req.on('response', (r) => {
      answered = true;
      let body = '';
      r.setEncoding('utf8');
      r.on('data', (d) => (body += d));
      r.on('end', () => { res({ status: r.statusCode ?? 0, headers: r.headers, body }); req.destroy(); });
      r.on('error', () => res({ status: r.statusCode ?? 0, headers: r.headers, body }));
    });
    req.on('error', (err) => { if (!answered) rej(err); });
    let sent = 0;
    const pump = () => {
      while (!answered && sent < size) {
        const n = Math.min(chunk.length, size - sent);
        sent += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void req.once('drain', pump);
      }
      if (!answered) req.end();
    };
    pump();
  });
}

type Event = LogRecord & { seq: number; stepId?: string };
const stored = (evs: Event[]): StoredRecord[] => evs.map(({ seq, ...record }) => ({ seq, record: record as LogRecord }));

async function timed(url: string, headers: Record<string, string> = {}) {
  const t0 = performance.now();
  try {
    const r = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
    const text = await r.text();
    return { status: r.status, retryAfter: r.headers.get('retry-after'), type: r.headers.get('content-type'), text, ms: performance.now() - t0 };
  } catch (err) {
    return { status: 0, retryAfter: null, type: null, text: String(err), ms: performance.now() - t0 };
  }
}

const tally = (rs: { status: number }[]) => rs.reduce<Record<number, number>>((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});

// ---------------------------------------------------------------- abusive clients against `smartspec serve`

describe('smartspec serve (child process): limits that protect the service', () => {
  let storeDir: string;
  let nats: NatsServer;
  let serve: { child: Child; url: string };
  let proxied: { child: Child; url: string };

  beforeAll(async () => {
    storeDir = await mkdtemp(join(tmpdir(), 'smartspec-serve-'));
    nats = await startNatsServer({ storeDir });
    // RATE_LIMIT_MAX is left at its default (60 per minute).
    [serve, proxied] = await Promise.all([
      startHttpChild('serve', 'serve', { NATS_URL: nats.url }),
      startHttpChild('serve-proxy', 'serve', { NATS_URL: nats.url, TRUST_PROXY: 'true' }),
    ]);
  }, 45_000);

  afterAll(async () => {
    for (const c of [serve?.child, proxied?.child]) if (c) await killChild(c, 'SIGKILL').catch(() => undefined);
    await nats?.stop();
    if (storeDir) await rm(storeDir, { recursive: true, force: true });
  });

  // These first: refused requests must not spend the rate-limit budget the flood counts on.
  const ELEVEN_MB = 11 * 1024 * 1024;

  it('answers a chunked 11 MB body with 413', async () => {
    const r = await postLarge(`${serve.url}/executions`, ELEVEN_MB, false);
    expect(r.status, r.body).toBe(413);
    expect(r.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(r.body).detail).toMatch(/exceeds the limit of 10485760 bytes/);
    expect((await timed(`${serve.url}/healthz`)).status).toBe(200);
  }, 30_000);

  it('answers an 11 MB body with a Content-Length with 413, to a client that sends it all (fetch)', async () => {
    // fetch writes the whole body before it reads the answer. Several tries: whether the answer
    // survives the server closing the socket under the client is a race (RFC 9112 §9.6).
    const TRIES = 10;
    const body = Buffer.alloc(ELEVEN_MB, 0x20); // JSON whitespace: only the size is wrong
    const outcomes: (number | string)[] = [];
    for (let i = 0; i < TRIES; i++) {
      try {
        const res = await fetch(`${serve.url}/executions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(20_000),
        });
        const text = await res.text();
        if (res.status === 413) {
          expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
          expect(JSON.parse(text).detail).toMatch(/exceeds the limit of 10485760 bytes/);
        }
        outcomes.push(res.status);
      } catch (err) {
        const cause = (err as { cause?: { code?: string; message?: string } }).cause;
        outcomes.push(`${(err as Error).message}: ${cause?.code ?? cause?.message ?? '?'}`);
      }
    }
    expect(outcomes).toEqual(Array(TRIES).fill(413));
    // The process shrugged it off.
    expect((await timed(`${serve.url}/healthz`)).status).toBe(200);
  }, 60_000);

  it('answers a text/plain body with 415', async () => {
    const r = await http(serve.url, 'POST', '/executions', 'definition: nope', { 'content-type': 'text/plain' });
    expect(r.status, r.text).toBe(415);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.json.detail).toMatch(/text\/plain/);
  });

  it('a flood of 100 requests: exactly 60 served, 40 × 429 with Retry-After; /healthz answers throughout', async () => {
    // Two X-Forwarded-For values, but TRUST_PROXY is off: both are the same client (the socket's address).
    const flood: Promise<Awaited<ReturnType<typeof timed>>>[] = [];
    const probes: Promise<Awaited<ReturnType<typeof timed>>>[] = [];
    const t0 = Date.now();
    for (let i = 0; i < 100; i++) {
      flood.push(timed(`${serve.url}/workflows`, { 'x-forwarded-for': i % 2 ? '198.51.100.1' : '198.51.100.2' }));
      if (i % 5 === 0) probes.push(timed(`${serve.url}/healthz`));
    }
    const results = await Promise.all(flood);
    const floodMs = Date.now() - t0;
    // Probes keep coming while the flood's answers are read.
    const health = await Promise.all(probes);
    for (let i = 0; i < 5; i++) health.push(await timed(`${serve.url}/healthz`));

    expect(tally(results), `flood took ${floodMs} ms`).toEqual({ 200: 60, 429: 40 });
    for (const r of results.filter((x) => x.status === 429)) {
      expect(r.type).toMatch(/^application\/problem\+json/);
      expect(Number(r.retryAfter), `Retry-After ${r.retryAfter}`).toBeGreaterThanOrEqual(1);
      expect(Number(r.retryAfter)).toBeLessThanOrEqual(60);
      expect(Number.isInteger(Number(r.retryAfter))).toBe(true);
    }
    // Every probe answered 200; the bound is generous (a loaded CI box), not a latency target.
    expect(tally(health)).toEqual({ 200: health.length });
    expect(Math.max(...health.map((h) => h.ms))).toBeLessThan(5000);

    // Without TRUST_PROXY the budget is the socket's: a "new" forwarded client is limited too.
    const other = await timed(`${serve.url}/workflows`, { 'x-forwarded-for': '192.0.2.99' });
    expect(other.status).toBe(429);
    expect(other.retryAfter).toBeTruthy();
  }, 30_000);

  it('with TRUST_PROXY=true, two X-Forwarded-For clients each get their own 60', async () => {
    const send = (ip: string) => timed(`${proxied.url}/workflows`, { 'x-forwarded-for': ip });
    const a: Promise<Awaited<ReturnType<typeof timed>>>[] = [];
    const b: Promise<Awaited<ReturnType<typeof timed>>>[] = [];
    for (let i = 0; i < 70; i++) { a.push(send('203.0.113.10')); b.push(send('203.0.113.20')); }
    const [ra, rb] = await Promise.all([Promise.all(a), Promise.all(b)]);
    expect(tally(ra), 'client A').toEqual({ 200: 60, 429: 10 });
    expect(tally(rb), 'client B').toEqual({ 200: 60, 429: 10 });
    for (const r of [...ra, ...rb].filter((x) => x.status === 429)) expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
    // A third client is untouched by the other two's floods.
    expect((await send('203.0.113.30')).status).toBe(200);
    expect((await timed(`${proxied.url}/healthz`)).status).toBe(200);
  }, 30_000);
});

// ---------------------------------------------------------------- a waiting execution and a dying worker

describe('a waiting execution survives its worker being killed', () => {
  let storeDir: string;
  let nats: NatsServer;
  let edge: RunningService & { url: string };
  const common = (url: string) => ({ NATS_URL: url, ACK_WAIT_MS: '1500' });

  beforeAll(async () => {
    storeDir = await mkdtemp(join(tmpdir(), 'smartspec-serve-wait-'));
    nats = await startNatsServer({ storeDir });
    edge = (await startService({ edge: true, worker: false }, { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'silent', RATE_LIMIT_MAX: '100000', ...common(nats.url) })) as RunningService & { url: string };
  }, 30_000);

  afterAll(async () => {
    await killAll();
    await edge?.stop().catch(() => undefined);
    await nats?.stop();
    if (storeDir) await rm(storeDir, { recursive: true, force: true });
  });

  it('SIGKILL the worker at WAITING, start another: signals over HTTP complete the executions', async () => {
    const definition = {
      id: 'approval',
      steps: [
        { id: 'draft', type: 'transform', value: { text: 'spec for {{input.feature}}' } },
        { id: 'approve', type: 'signal' },
        { id: 'publish', type: 'transform', value: { published: '{{steps.draft.output.text}}', by: '{{steps.approve.output.by}}' } },
      ],
    };
    const first = spawnCli('worker1', 'worker', { ...common(nats.url), LOG_LEVEL: 'info' });
    await first.waitForOutput(/worker consuming commands/, 20_000);

    const ids: string[] = [];
    for (const feature of ['search', 'billing']) {
      const r = await http(edge.url, 'POST', '/executions', { definition, input: { feature } });
      expect(r.status, r.text).toBe(202);
      ids.push(r.json.executionId);
    }
    for (const id of ids) await waitForStatus(edge.url, id, ['WAITING'], 15_000);
    const [early, late] = ids;

    await killChild(first, 'SIGKILL');

    // A signal while no worker runs waits in the command stream.
    const s1 = await http(edge.url, 'POST', `/executions/${early}/signals/approve`, { by: 'alice' });
    expect(s1.status, s1.text).toBe(202);

    const second = spawnCli('worker2', 'worker', { ...common(nats.url), LOG_LEVEL: 'info' });
    await second.waitForOutput(/worker consuming commands/, 20_000);

    const s2 = await http(edge.url, 'POST', `/executions/${late}/signals/approve`, { by: 'bob' });
    expect(s2.status, s2.text).toBe(202);

    const done = new Map<string, any>();
    for (const id of ids) {
      const d = await waitForStatus(edge.url, id, ['COMPLETED', 'FAILED', 'CANCELLED'], 20_000).catch((err) => {
        throw new Error(`${(err as Error).message}\nworker2: ${second.output().slice(-2000)}`);
      });
      done.set(id, d);
    }
    expect(done.get(early).status).toBe('COMPLETED');
    expect(done.get(early).steps.publish.output).toEqual({ published: 'spec for search', by: 'alice' });
    expect(done.get(late).status).toBe('COMPLETED');
    expect(done.get(late).steps.publish.output).toEqual({ published: 'spec for billing', by: 'bob' });

    for (const id of ids) {
      const r = await http(edge.url, 'GET', `/executions/${id}/events`);
      const evs = r.json.events as Event[];
      const report = replayExecution(id, stored(evs));
      expect(report.ok, JSON.stringify(report.events.filter((e) => !e.ok))).toBe(true);
      // Nothing before the wait ran again; the signal was taken once.
      expect(evs.filter((e) => e.type === 'StepStarted' && e.stepId === 'draft')).toHaveLength(1);
      expect(evs.filter((e) => e.type === 'SignalReceived')).toHaveLength(1);
      expect(evs.filter((e) => e.type === 'ExecutionCompleted')).toHaveLength(1);
    }
  }, 60_000);
});
