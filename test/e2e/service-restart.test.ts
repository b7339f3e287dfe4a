/**
 * Process-level resilience (issue 3): the nats-server restarts while
 * executions run. The server has file storage and a fixed port; the service
 * (edge + worker, in-process, over real HTTP) keeps running through the
 * outage. When NATS is back on the same port and store: every execution
 * completes, no event is lost or doubled (each history replays, each step
 * completed exactly once, no step ran twice), commands accepted just before
 * the outage are carried out, /readyz is 503 while NATS is down and 200 after,
 * an execution that waited for a signal across the outage still takes it, and
 * no process claims to host an execution that has ended.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../src/cli/service.js';
import type { LogRecord, StoredRecord } from '../../src/log/records.js';
import { replayExecution } from '../../src/log/replay.js';
import { connectNats } from '../../src/nats/connect.js';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';
import { pingOwner } from '../../src/worker/control.js';
import { http, waitForStatus } from '../support/service.js';
import { until } from '../support/processes.js';

const ACK_WAIT_MS = 4000;
/** A short outage ends before any held command's ack wait runs out; a long one outlasts it. */
const SHORT_OUTAGE_MS = 1000;
const LONG_OUTAGE_MS = ACK_WAIT_MS + 1500;

// ---------------------------------------------------------------- helpers


/** Counts requests per path /hit/<executionId>/<stepId>. */
function startHitServer(): Promise<{ server: Server; base: string; count(id: string, step: string): number }> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const m = /^\/hit\/([^/?]+)\/([^/?]+)/.exec(req.url ?? '');
    if (!m) { res.writeHead(404).end(); return; }
    const key = `${m[1]}/${m[2]}`;
    hits.set(key, (hits.get(key) ?? 0) + 1);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ key }));
  });
  server.keepAliveTimeout = 1000;
  return new Promise((res) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      res({ server, base: `http://127.0.0.1:${port}`, count: (id, step) => hits.get(`${id}/${step}`) ?? 0 });
    }),
  );
}

type Event = LogRecord & { seq: number; stepId?: string };

async function eventsOf(base: string, id: string): Promise<Event[]> {
  const r = await http(base, 'GET', `/executions/${id}/events`);
  expect(r.status, r.text).toBe(200);
  return r.json.events as Event[];
}

const stored = (evs: Event[]): StoredRecord[] => evs.map(({ seq, ...record }) => ({ seq, record: record as LogRecord }));
const describeLog = (evs: Event[]) => evs.map((e) => `${e.seq}:${e.type}${e.stepId ? `/${e.stepId}` : ''}`).join(' ');

/** GET with a client-side bound, so a hanging request fails the poll instead of the test. */
async function status(url: string, timeoutMs = 5000): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

// ---------------------------------------------------------------- fixture

let storeDir: string;
let port: number;
let nats: NatsServer | undefined;
let nc: NatsConnection;
let svc: RunningService & { url: string };
let hits: Awaited<ReturnType<typeof startHitServer>>;

beforeAll(async () => {
  storeDir = await mkdtemp(join(tmpdir(), 'smartspec-restart-'));
  nats = await startNatsServer({ storeDir });
  port = nats.port;
  hits = await startHitServer();
  svc = (await startService(
    { edge: true, worker: true },
    { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'silent', RATE_LIMIT_MAX: '100000', ACK_WAIT_MS: String(ACK_WAIT_MS), HTTP_STEP_ALLOW: '127.0.0.1', NATS_URL: nats.url },
  )) as RunningService & { url: string };
  nc = await connectNats(nats.url, 'service-restart-test');
}, 30_000);

afterAll(async () => {
  // NATS must be up for a clean stop; if a test left it down, bring it back first.
  if (!nats && storeDir) nats = await startNatsServer({ storeDir, port }).catch(() => undefined);
  await Promise.race([svc?.stop(), new Promise((r) => setTimeout(r, 10_000))]).catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await new Promise((r) => (hits ? hits.server.close(() => r(undefined)) : r(undefined)));
  hits?.server.closeAllConnections();
  await nats?.stop();
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
}, 30_000);

// ---------------------------------------------------------------- the scenario

async function restartDuringRuns(how: 'stop' | 'kill', outageMs: number, tag: string) {
  const hit = (step: string) => ({ id: step, type: 'http', request: { url: `${hits.base}/hit/{{execution.id}}/${step}` } });
  const runs = {
    id: `restart-${tag}`,
    // `d` keeps every execution running for a while after NATS is back, while redeliveries arrive.
    steps: [hit('a'), { id: 'b', type: 'sleep', durationMs: 700 }, hit('c'), { id: 'd', type: 'sleep', durationMs: 2500 }, hit('e')],
  };
  // Running (and so holding its command) through the outage, then waiting for a signal.
  const waits = {
    id: `restart-wait-${tag}`,
    steps: [hit('a'), { id: 'b', type: 'sleep', durationMs: 1500 }, { id: 'approve', type: 'signal' }, hit('c')],
  };
  const submit = async (definition: unknown) => {
    const r = await http(svc.url, 'POST', '/executions', { definition, input: {} });
    expect(r.status, r.text).toBe(202);
    return r.json.executionId as string;
  };

  expect(await status(`${svc.url}/readyz`)).toBe(200);
  const running: string[] = [];
  for (let i = 0; i < 6; i++) running.push(await submit(runs));
  const waiting: string[] = [await submit(waits), await submit(waits)];
  await until('every execution to be past its first step', async () => [...running, ...waiting].every((id) => hits.count(id, 'a') === 1), 15_000);

  // Accepted (202: stored in JetStream) just before the outage.
  const late = [await submit(runs), await submit(runs)];

  const downAt = Date.now();
  await (how === 'stop' ? nats!.stop() : nats!.kill());
  nats = undefined;

  // Not ready while NATS is down; alive all the same.
  await until('/readyz to answer 503 while NATS is down', async () => (await status(`${svc.url}/readyz`)) === 503, 15_000);
  expect(await status(`${svc.url}/healthz`)).toBe(200);
  const elapsed = Date.now() - downAt;
  if (elapsed < outageMs) await new Promise((r) => setTimeout(r, outageMs - elapsed));

  nats = await startNatsServer({ storeDir, port });
  expect(nats.port).toBe(port);
  await until('/readyz to answer 200 once NATS is back', async () => (await status(`${svc.url}/readyz`)) === 200, 20_000, 100);

  for (const id of [...running, ...late]) {
    const done = await waitForStatus(svc.url, id, ['COMPLETED', 'FAILED', 'CANCELLED'], 30_000);
    expect(done.status, `${id}: ${JSON.stringify(done).slice(0, 500)}`).toBe('COMPLETED');
  }
  for (const id of waiting) await waitForStatus(svc.url, id, ['WAITING'], 30_000);

  // The waiting executions still take their signal.
  for (const id of waiting) {
    const r = await http(svc.url, 'POST', `/executions/${id}/signals/approve`, { ok: true });
    expect(r.status, r.text).toBe(202);
  }
  for (const id of waiting) {
    const done = await waitForStatus(svc.url, id, ['COMPLETED', 'FAILED', 'CANCELLED'], 20_000).catch(async (err) => {
      throw new Error(`${(err as Error).message}\nlog: ${describeLog(await eventsOf(svc.url, id))}`);
    });
    expect(done.status).toBe('COMPLETED');
    expect(done.steps.approve.output).toEqual({ ok: true });
  }

  const check = async (id: string, definition: { steps: { id: string; type: string }[] }) => {
    const evs = await eventsOf(svc.url, id);
    const where = `${id}: ${describeLog(evs)}`;
    const report = replayExecution(id, stored(evs));
    expect(report.chainBreaks, where).toEqual([]);
    expect(report.ok, `${where}\n${JSON.stringify(report.events.filter((e) => !e.ok))}`).toBe(true);
    expect(evs.filter((e) => e.type === 'ExecutionStarted'), where).toHaveLength(1);
    expect(evs.filter((e) => e.type === 'ExecutionCompleted'), where).toHaveLength(1);
    // The worker lived through the outage: nothing needed recovering, nothing ran twice.
    expect(evs.filter((e) => e.type === 'ExecutionResumed'), where).toEqual([]);
    for (const step of definition.steps) {
      expect(evs.filter((e) => e.type === 'StepStarted' && e.stepId === step.id), `${where}: StepStarted ${step.id}`).toHaveLength(1);
      // A signal step ends with its SignalReceived; every other step with one StepCompleted.
      const ended = step.type === 'signal' ? 'SignalReceived' : 'StepCompleted';
      expect(evs.filter((e) => e.type === ended && e.stepId === step.id), `${where}: ${ended} ${step.id}`).toHaveLength(1);
      if (step.type === 'http') expect(hits.count(id, step.id), `${where}: hits of ${step.id}`).toBe(1);
    }
  };
  for (const id of [...running, ...late]) await check(id, runs);
  for (const id of waiting) await check(id, waits);

  // Nobody still claims an execution that has ended (a stale claim blocks resume and signals).
  const groups = { running, late, waiting };
  const claimed: string[] = [];
  for (const [group, ids] of Object.entries(groups)) for (const id of ids) {
    const owner = await pingOwner(nc, id);
    if (owner) claimed.push(`${group} ${id} (claimed by ${owner})`);
  }
  expect(claimed, 'ended executions a live process still claims to host').toEqual([]);
}

describe('nats-server restarts while executions run', () => {
  it('graceful stop (SIGTERM), back after ~1 s on the same port and store', async () => {
    await restartDuringRuns('stop', SHORT_OUTAGE_MS, 'term');
  }, 60_000);

  // Longer than the ack wait: JetStream redelivers the start commands the worker holds, to that same worker.
  it('crash (SIGKILL), back after longer than ACK_WAIT_MS on the same port and store', async () => {
    await restartDuringRuns('kill', LONG_OUTAGE_MS, 'kill');
  }, 60_000);
});
