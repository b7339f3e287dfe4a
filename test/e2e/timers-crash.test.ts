/**
 * Durable timers across worker crashes (issue 9, item 4): real nats-server,
 * real worker processes (`node bin/smartspec.mjs worker`), the edge in-process
 * over real HTTP. A signal step's timeout and a sleep's wake time are recorded
 * in the log and kept in the timer bucket; any worker fires them at the
 * recorded time, after the worker that started the execution was SIGKILLed.
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
import { killAll, killChild, spawnCli, until, type Child } from '../support/processes.js';
import type { EventView } from './http-helpers.js';

const ACK_WAIT_MS = 1500;

let storeDir: string;
let nats: NatsServer;
let nc: NatsConnection;
let edge: RunningService & { url: string };
let slow: { server: Server; url: string };
let workers: Child[] = [];
const common = () => ({ NATS_URL: nats.url, ACK_WAIT_MS: String(ACK_WAIT_MS), LOG_LEVEL: 'info' });

/** Answers after `?ms=` milliseconds: a step during which the execution is hosted (and its owner can be asked). */
function startSlowServer(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0);
    setTimeout(() => { if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'); }, ms);
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res({ server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })));
}

async function events(id: string): Promise<EventView[]> {
  const r = await http(edge.url, 'GET', `/executions/${id}/events`);
  expect(r.status, r.text).toBe(200);
  return r.json.events;
}
const one = (evs: EventView[], type: string, stepId: string) => {
  const found = evs.filter((e) => e.type === type && e.stepId === stepId);
  expect(found, `${type} ${stepId} in ${evs.map((e) => `${e.type}/${e.stepId ?? ''}`).join(' ')}`).toHaveLength(1);
  return found[0];
};
function expectReplays(id: string, evs: EventView[]) {
  const report = replayExecution(id, evs.map(({ seq, ...record }) => ({ seq, record: record as unknown as LogRecord })) as StoredRecord[]);
  expect(report.chainBreaks).toEqual([]);
  expect(report.ok, JSON.stringify(report.events.filter((e) => !e.ok))).toBe(true);
}
const byPid = (owner: string | undefined) => workers.find((w) => owner !== undefined && new RegExp(`\\bpid ${w.proc.pid}\\b`).test(owner));

beforeAll(async () => {
  storeDir = await mkdtemp(join(tmpdir(), 'smartspec-timers-'));
  nats = await startNatsServer({ storeDir });
  slow = await startSlowServer();
  edge = (await startService({ edge: true, worker: false }, { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'silent', RATE_LIMIT_MAX: '100000', NATS_URL: nats.url, ACK_WAIT_MS: String(ACK_WAIT_MS) })) as RunningService & { url: string };
  workers = [1, 2].map((n) => spawnCli(`worker${n}`, 'worker', common()));
  // Generous: on a busy machine a worker process takes a while to start.
  await Promise.all(workers.map((w) => w.waitForOutput(/worker consuming commands/, 60_000)));
  nc = await connectNats(nats.url, 'timers-crash-test');
}, 90_000);

afterAll(async () => {
  await killAll();
  await edge?.stop().catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await new Promise((r) => (slow ? slow.server.close(() => r(undefined)) : r(undefined)));
  slow?.server.closeAllConnections();
  await nats?.stop();
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
});

describe('durable timers when workers die', () => {
  it('a passivated WAITING execution with a 2 s signal timeout times out on the other worker, within a second of its deadline, after its own worker was SIGKILLed', async () => {
    const definition = {
      id: 'approval-with-timeout',
      steps: [
        { id: 'prepare', type: 'http', request: { method: 'GET', url: `${slow.url}/?ms=1500` } },
        { id: 'approve', type: 'signal', timeoutMs: 2000, retry: { maxAttempts: 1 } },
      ],
    };
    const r = await http(edge.url, 'POST', '/executions', { definition });
    expect(r.status, r.text).toBe(202);
    const id: string = r.json.executionId;

    // While `prepare` runs, the worker hosting it answers on the control subject.
    const owner = await until('the execution to have a live owner', async () => pingOwner(nc, id), 20_000);
    const own = byPid(owner);
    expect(own, `owner ${owner}`).toBeDefined();
    const other = workers.find((w) => w !== own)!;

    const waiting = await waitForStatus(edge.url, id, ['WAITING', 'FAILED', 'COMPLETED'], 20_000);
    expect(waiting.status).toBe('WAITING');
    await until('the execution to be passivated', async () => (await pingOwner(nc, id)) === undefined, 10_000);
    await killChild(own!, 'SIGKILL');

    const done = await waitForStatus(edge.url, id, ['FAILED', 'COMPLETED', 'CANCELLED'], 30_000);
    expect(done.status, JSON.stringify(done)).toBe('FAILED');
    expect(done.steps.approve.error).toMatchObject({ code: 'TIMEOUT' });

    const evs = await events(id);
    const started = one(evs, 'StepStarted', 'approve');
    const failed = one(evs, 'StepFailed', 'approve');
    const deadline = Date.parse(started.deadline as string);
    const firedAt = Date.parse(failed.at);
    expect(firedAt).toBeGreaterThanOrEqual(deadline);
    expect(firedAt - deadline, `fired ${firedAt - deadline} ms after its deadline`).toBeLessThan(1000);
    expect(failed.lateMs).toBeLessThan(1000);
    expect(other.proc.exitCode).toBeNull(); // the survivor fired it
    expectReplays(id, evs);
  }, 60_000);

  it('a sleep interrupted by a crash of every worker ends at its recorded wake time, not a new full sleep', async () => {
    const SLEEP_MS = 8000;
    const alive = workers.filter((w) => w.proc.exitCode === null && w.proc.signalCode === null);
    const definition = { id: 'nap-through-crash', steps: [{ id: 'nap', type: 'sleep', durationMs: SLEEP_MS }, { id: 'after', type: 'transform', value: 'awake' }] };
    const r = await http(edge.url, 'POST', '/executions', { definition });
    expect(r.status, r.text).toBe(202);
    const id: string = r.json.executionId;
    const started = await until('the sleep to start', async () => (await events(id)).find((e) => e.type === 'StepStarted' && e.stepId === 'nap'), 20_000);
    const wakeAt = Date.parse(started.wakeAt as string);

    // No worker survives: the sleep's timer lives only in the log and the timer bucket now.
    for (const w of alive) await killChild(w, 'SIGKILL');
    const fresh = spawnCli('worker3', 'worker', common());
    workers.push(fresh);
    await fresh.waitForOutput(/worker consuming commands/, 60_000);
    const readyAt = Date.now();

    const done = await waitForStatus(edge.url, id, ['COMPLETED', 'FAILED', 'CANCELLED'], 30_000);
    expect(done.status, JSON.stringify(done)).toBe('COMPLETED');
    expect(done.steps.after.output).toBe('awake');
    const evs = await events(id);
    const completed = one(evs, 'StepCompleted', 'nap');
    const wokeAt = Date.parse(completed.at);
    expect(wokeAt).toBeGreaterThanOrEqual(wakeAt);
    // A sleep started again from zero would end a full SLEEP_MS after the new worker was up.
    expect(wokeAt, `woke ${wokeAt - wakeAt} ms after the recorded wake time`).toBeLessThan(readyAt + SLEEP_MS);
    // Fired at the wake time, or as soon as a worker was up when none was by then (a slow start).
    expect(wokeAt - Math.max(wakeAt, readyAt)).toBeLessThan(2000);
    expect(Math.abs((completed.lateMs as number) - (wokeAt - wakeAt))).toBeLessThan(1000);
    expect(evs.filter((e) => e.type === 'StepStarted' && e.stepId === 'nap')).toHaveLength(1);
    expectReplays(id, evs);
  }, 120_000);
});
