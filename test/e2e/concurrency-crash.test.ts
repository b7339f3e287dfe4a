/**
 * Concurrency keys when a worker dies (src/concurrency): a real nats-server, a
 * real worker process (`node bin/smartspec.mjs worker`) that is SIGKILLed while
 * its step holds the only slot of a key, and a second worker in this process.
 * The dead worker's lease is never let go; it expires (SMARTSPEC_LEASE_TTL_MS)
 * and the step queued behind it starts.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';
import { connectNats } from '../../src/nats/connect.js';
import { CommandBus } from '../../src/bus/commands.js';
import { EventLog } from '../../src/log/eventLog.js';
import { loadExecution } from '../../src/log/views.js';
import { ExecutionNotFoundError } from '../../src/errors.js';
import type { LogRecord } from '../../src/log/records.js';
import { killAll, killChild, spawnCli, until, type Child } from '../support/processes.js';
import { startLeaseWorker, type TestWorker } from '../support/leases.js';

const TTL_MS = 2000;

let storeDir: string;
let nats: NatsServer;
let server: Server;
let url: string;
/** Until the crash, requests of `?hang=1` never answer: the step holds its slot. */
let hang = true;
const arrivals: string[] = [];
let dying: Child;
let survivor: TestWorker;
let log: EventLog;

beforeAll(async () => {
  storeDir = await mkdtemp(join(tmpdir(), 'smartspec-leases-'));
  nats = await startNatsServer({ storeDir });
  server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    arrivals.push(u.searchParams.get('id') ?? '');
    if (hang && u.searchParams.get('hang') === '1') return; // answered never (its worker dies)
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  dying = spawnCli('dying', 'worker', { NATS_URL: nats.url, ACK_WAIT_MS: '1500', SMARTSPEC_LEASE_TTL_MS: String(TTL_MS), LOG_LEVEL: 'info' });
  await dying.waitForOutput(/worker consuming commands/, 60_000);
}, 90_000);

afterAll(async () => {
  await killAll();
  await survivor?.stop().catch(() => undefined);
  server?.closeAllConnections();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  await nats?.stop();
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
});

it('a SIGKILLed worker\'s lease expires within its TTL, and the step queued behind it runs', async () => {
  const definition = (hangs: boolean) => ({
    id: 'one-at-a-time',
    steps: [{ id: 'call', type: 'http', concurrency: [{ key: 'only-one', limit: 1 }], request: { method: 'GET', url: `${url}/?id={{execution.id}}${hangs ? '&hang=1' : ''}` } }],
  });
  // Only the dying worker consumes commands yet: it hosts the first execution.
  const nc = await connectNats(nats.url, 'test');
  try {
    const bus = await CommandBus.open(nc);
    log = await EventLog.open(nc);
    const records = async (id: string): Promise<LogRecord[]> => {
      try { return (await loadExecution(log, id)).records.map((r) => r.record); } catch (err) { if (err instanceof ExecutionNotFoundError) return []; throw err; }
    };
    const first = `crash-${randomUUID()}`;
    await bus.publish('start', { executionId: first, definition: definition(true), input: {} }, first);
    await until('the first step to hold the slot', async () => arrivals.includes(first), 20_000);

    survivor = await startLeaseWorker(nats.url, 'survivor', { ttlMs: TTL_MS, ackWaitMs: 1500 });
    const second = `crash-${randomUUID()}`;
    await bus.publish('start', { executionId: second, definition: definition(false), input: {} }, second);
    await until('the second to be queued', async () => (await records(second)).some((r) => r.type === 'StepQueued'), 20_000);
    const held = await survivor.admission.store.read('only-one');
    expect(held?.leases.map((l) => l.id)).toEqual([`${first}:call:1`]);
    expect(held?.queue.map((w) => w.id)).toEqual([`${second}:call:1`]);

    await killChild(dying, 'SIGKILL');
    hang = false;
    const killedAt = Date.now();
    await until('the dead worker\'s lease to go', async () => !(await survivor.admission.store.read('only-one'))?.leases.some((l) => l.id === `${first}:call:1`), TTL_MS + 10_000);
    const freedAfter = Date.now() - killedAt;
    // The lease was renewed at most a third of the TTL before the kill; the sweep runs every second.
    expect(freedAfter, `freed ${freedAfter} ms after the kill`).toBeLessThan(TTL_MS + 3000);

    for (const id of [first, second]) {
      await until(`${id} to complete`, async () => (await records(id)).at(-1)?.type === 'ExecutionCompleted', 30_000);
    }
    const started = (await records(second)).find((r) => r.type === 'StepStarted') as Extract<LogRecord, { type: 'StepStarted' }>;
    expect(Date.parse(started.at)).toBeGreaterThanOrEqual(killedAt);
    expect(started.queuedMs).toBeGreaterThan(0);
  } finally {
    await nc.close();
  }
}, 120_000);
