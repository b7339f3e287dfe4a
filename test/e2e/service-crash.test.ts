/**
 * Process-level resilience (issue 3): a worker process dies (SIGKILL) while it
 * hosts executions mid-run. Real nats-server, real worker child processes
 * (`node bin/smartspec.mjs worker`), a real HTTP server the steps call, and the
 * edge in-process over real HTTP. JetStream redelivers the dead worker's held
 * commands after ACK_WAIT_MS; the surviving worker must continue each
 * execution from its log: every execution completes, no step that had
 * completed runs again, the re-run of an in-flight step is recorded as a new
 * StepStarted after an ExecutionResumed { reason: 'recovery' }, and every
 * history replays with an intact hash chain (no interleaved writers).
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
import { killAll, spawnCli, killChild, until, type Child } from '../support/processes.js';

const ACK_WAIT_MS = 1500;
const EXECUTIONS = 10;
const SLOW_MS = 2500;

// ---------------------------------------------------------------- helpers







/** Counts requests per path /hit/<executionId>/<stepId>; `?delayMs=` answers late. */
function startHitServer(): Promise<{ server: Server; base: string; hits: Map<string, number>; count(id: string, step: string): number }> {
  const hits = new Map<string, number>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/hit\/([^/]+)\/([^/]+)$/.exec(url.pathname);
    if (!m) { res.writeHead(404).end(); return; }
    const key = `${m[1]}/${m[2]}`;
    const n = (hits.get(key) ?? 0) + 1;
    hits.set(key, n);
    const delay = Number(url.searchParams.get('delayMs') ?? 0);
    const answer = () => { if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ key, n })); };
    if (delay > 0) setTimeout(answer, delay); else answer();
  });
  server.keepAliveTimeout = 1000;
  return new Promise((res) =>
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      res({ server, base: `http://127.0.0.1:${port}`, hits, count: (id, step) => hits.get(`${id}/${step}`) ?? 0 });
    }),
  );
}

type Event = LogRecord & { seq: number };

async function eventsOf(base: string, id: string): Promise<Event[]> {
  const r = await http(base, 'GET', `/executions/${id}/events`);
  expect(r.status, r.text).toBe(200);
  return r.json.events as Event[];
}

const stored = (evs: Event[]): StoredRecord[] => evs.map(({ seq, ...record }) => ({ seq, record: record as LogRecord }));
const ofStep = (evs: Event[], type: string, stepId: string) => evs.filter((e) => e.type === type && (e as { stepId?: string }).stepId === stepId);

// ---------------------------------------------------------------- fixture

let storeDir: string;
let nats: NatsServer;
let nc: NatsConnection;
let edge: RunningService & { url: string };
let hitServer: Awaited<ReturnType<typeof startHitServer>>;
let workers: Child[] = [];

beforeAll(async () => {
  storeDir = await mkdtemp(join(tmpdir(), 'smartspec-crash-'));
  nats = await startNatsServer({ storeDir });
  hitServer = await startHitServer();
  const common = { NATS_URL: nats.url, ACK_WAIT_MS: String(ACK_WAIT_MS) };
  // Every process configures the shared consumer; they must agree on the ack wait.
  edge = (await startService({ edge: true, worker: false }, { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'silent', RATE_LIMIT_MAX: '100000', ...common })) as RunningService & { url: string };
  workers = [1, 2].map((n) => spawnCli(`worker${n}`, 'worker', { ...common, LOG_LEVEL: 'info' }));
  await Promise.all(workers.map((w) => w.waitForOutput(/worker consuming commands/, 20_000)));
  nc = await connectNats(nats.url, 'service-crash-test');
}, 40_000);

afterAll(async () => {
  await killAll();
  await edge?.stop().catch(() => undefined);
  await nc?.close().catch(() => undefined);
  await new Promise((r) => (hitServer ? hitServer.server.close(() => r(undefined)) : r(undefined)));
  hitServer?.server.closeAllConnections();
  await nats?.stop();
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
});

// ---------------------------------------------------------------- tests

interface CrashRun {
  ids: string[];
  orphaned: string[];
  kept: string[];
  survivor: Child;
  /** Each execution's records at the moment of the kill. */
  before: Map<string, Event[]>;
}

const httpSteps = ['a', 'b', 'c', 'e'];
let crash: Promise<CrashRun> | undefined;
/** The scenario, run once for the file by whichever test asks first: both tests check it, in any order. */
const crashRun = () => (crash ??= killWorkerMidRun());

/** EXECUTIONS submitted, the worker hosting more of them SIGKILLed mid-run, then all of them ended. */
async function killWorkerMidRun(): Promise<CrashRun> {
  const hit = (step: string, slow = false) => ({
    id: step,
    type: 'http',
    request: { method: 'GET', url: `${hitServer.base}/hit/{{execution.id}}/${step}${slow ? `?delayMs=${SLOW_MS}` : ''}` },
  });
  const definition = {
    id: 'crash-two-workers',
    steps: [hit('a'), hit('b', true), hit('c'), { id: 'd', type: 'sleep', durationMs: 100 }, hit('e')],
  };

  const ids: string[] = [];
  for (let i = 0; i < EXECUTIONS; i++) {
    const r = await http(edge.url, 'POST', '/executions', { definition, input: { i } });
    expect(r.status, r.text).toBe(202);
    ids.push(r.json.executionId);
  }

  // Mid-run: every execution has passed `a` and its slow `b` request has arrived (it answers SLOW_MS later).
  await until('every execution to be inside its slow step', async () => ids.every((id) => hitServer.count(id, 'a') === 1 && hitServer.count(id, 'b') === 1), 20_000);

  // Who hosts what: each hosted execution answers on its control subject with its owner.
  const owners = new Map<string, string>();
  for (const id of ids) owners.set(id, (await pingOwner(nc, id)) ?? '(none)');
  // Owners name their process ('worker pid 1234 on host').
  const byPid = (w: Child) => ids.filter((id) => /\bpid (\d+)\b/.exec(owners.get(id)!)?.[1] === String(w.proc.pid));
  const [w1, w2] = workers;
  expect(byPid(w1).length + byPid(w2).length, `owners: ${JSON.stringify([...owners])}`).toBe(EXECUTIONS);
  const victim = byPid(w1).length >= byPid(w2).length ? w1 : w2;
  const survivor = victim === w1 ? w2 : w1;
  const orphaned = byPid(victim);
  const kept = byPid(survivor);
  expect(orphaned.length).toBeGreaterThan(0);

  await killChild(victim, 'SIGKILL');

  // What was recorded before the kill (the dead worker can write nothing more).
  const before = new Map<string, Event[]>();
  for (const id of ids) before.set(id, await eventsOf(edge.url, id));
  for (const id of orphaned) {
    expect(before.get(id)!.some((e) => e.type === 'ExecutionCompleted'), `orphaned ${id} already completed`).toBe(false);
    expect(ofStep(before.get(id)!, 'StepStarted', 'b').length).toBe(1);
  }

  for (const id of ids) {
    const done = await waitForStatus(edge.url, id, ['COMPLETED', 'FAILED', 'CANCELLED'], 30_000);
    expect(done.status, `${id}: ${JSON.stringify(done).slice(0, 500)}`).toBe('COMPLETED');
  }
  return { ids, orphaned, kept, survivor, before };
}

const describeEvents = (id: string, kind: string, evs: Event[]) =>
  `${id} (${kind}): ${evs.map((e) => `${e.seq}:${e.type}${(e as { stepId?: string }).stepId ? `/${(e as { stepId?: string }).stepId}` : ''}${(e as { attempt?: number }).attempt ? `#${(e as { attempt?: number }).attempt}` : ''}`).join(' ')}`;

describe('a worker process killed mid-run (two workers)', () => {
  it('the other worker takes over: all complete, completed steps never re-run, histories verify', async () => {
    const { ids, orphaned, kept, survivor, before } = await crashRun();
    for (const id of ids) {
      const evs = await eventsOf(edge.url, id);
      const where = describeEvents(id, orphaned.includes(id) ? 'orphaned' : 'kept', evs);

      // One writer at a time: the hash chain is intact and every recorded state replays.
      const report = replayExecution(id, stored(evs));
      expect(report.chainBreaks, where).toEqual([]);
      expect(report.ok, `${where}\n${JSON.stringify(report.events.filter((e) => !e.ok))}`).toBe(true);
      // Stream sequence numbers of one execution's subject strictly increase (no gap check: the stream is shared).
      for (let i = 1; i < evs.length; i++) expect(evs[i].seq).toBeGreaterThan(evs[i - 1].seq);

      expect(evs.filter((e) => e.type === 'ExecutionStarted')).toHaveLength(1);
      expect(evs.filter((e) => e.type === 'ExecutionCompleted'), where).toHaveLength(1);
      expect(evs[evs.length - 1].type).toBe('ExecutionCompleted');
      for (const step of [...httpSteps, 'd']) expect(ofStep(evs, 'StepCompleted', step), `${where}: StepCompleted ${step}`).toHaveLength(1);

      const completedBeforeKill = new Set(before.get(id)!.filter((e) => e.type === 'StepCompleted').map((e) => (e as { stepId: string }).stepId));
      for (const step of httpSteps) {
        const hits = hitServer.count(id, step);
        const starts = ofStep(evs, 'StepStarted', step);
        if (completedBeforeKill.has(step)) expect(hits, `${where}: ${step} completed before the kill and ran again`).toBe(1);
        // Each run of a step is preceded by its own StepStarted record (at-least-once, but recorded).
        expect(hits, `${where}: ${step} ran ${hits}× for ${starts.length} StepStarted`).toBeGreaterThanOrEqual(1);
        expect(hits, `${where}: ${step} ran ${hits}× for ${starts.length} StepStarted`).toBeLessThanOrEqual(starts.length);
      }

      const recoveries = evs.filter((e) => e.type === 'ExecutionResumed');
      if (kept.includes(id)) {
        // The survivor's own executions never changed hands.
        expect(recoveries, where).toEqual([]);
        for (const step of httpSteps) expect(hitServer.count(id, step), `${where}: ${step}`).toBe(1);
      } else {
        expect(recoveries.map((e) => (e as { reason?: string }).reason), where).toEqual(['recovery']);
        // The step in flight at the kill ran again, recorded as a new StepStarted after the recovery.
        const resumedAt = recoveries[0].seq;
        const bStarts = ofStep(evs, 'StepStarted', 'b');
        expect(bStarts.map((e) => e.seq < resumedAt), where).toEqual([true, false]);
        expect(hitServer.count(id, 'b'), where).toBe(2);
        const bDone = ofStep(evs, 'StepCompleted', 'b')[0];
        expect(bDone.seq).toBeGreaterThan(bStarts[1].seq);
        expect(bDone.seq).toBeGreaterThan(resumedAt);
      }
    }

    // Nobody still claims an execution that has ended.
    for (const id of ids) expect(await pingOwner(nc, id), `live owner of ended ${id}`).toBeUndefined();

    // The survivor says it continued each orphan, and nothing else (a redelivered command may log it twice).
    const continued = survivor.output().split('\n').filter((l) => l.includes('continuing an execution nobody hosts')).map((l) => (JSON.parse(l) as { executionId: string }).executionId);
    expect([...new Set(continued)].sort(), survivor.output().slice(-3000)).toEqual([...orphaned].sort());
  }, 60_000);

  it('records the re-run of the interrupted step as a new attempt (not a second attempt 1)', async () => {
    const { orphaned } = await crashRun();
    expect(orphaned.length).toBeGreaterThan(0);
    for (const id of orphaned) {
      const evs = await eventsOf(edge.url, id);
      const where = describeEvents(id, 'orphaned', evs);
      const starts = ofStep(evs, 'StepStarted', 'b').map((e) => (e as { attempt?: number }).attempt);
      const completed = ofStep(evs, 'StepCompleted', 'b').map((e) => (e as { attempt?: number }).attempt);
      expect(starts, where).toHaveLength(2);
      // The interrupted attempt was spent: the recovery's StepStarted must carry the next number,
      // so the audit trail tells the two runs apart and retry.maxAttempts counts it.
      expect(starts[1], `${where}: attempts of b ${JSON.stringify(starts)}`).toBeGreaterThan(starts[0]!);
      expect(completed, where).toEqual([starts[1]]);
    }
  }, 60_000);
});
