/**
 * A step queued on a concurrency key costs no worker slot (src/concurrency):
 * one worker that hosts 2 executions at once, a key of limit 1 held by a
 * step whose request is answered only when the test says so, two more
 * executions queued behind it; an unrelated execution still runs and
 * completes while the key's holder runs (it would wait for a slot if the
 * queued ones held theirs).
 */
import { createServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { until } from '../support/processes.js';
import { startLeaseWorker, type TestWorker } from '../support/leases.js';
import { loadExecution } from '../../src/log/views.js';
import { EventLog } from '../../src/log/eventLog.js';
import { ExecutionNotFoundError } from '../../src/errors.js';
import type { LogRecord } from '../../src/log/records.js';

const nats = useNatsServer();
let server: Server;
let url: string;
let worker: TestWorker;
let log: EventLog;
/** Requests of `?gate=1` are answered only once the test opens the gate. */
const gated: (() => void)[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const answer = () => { if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end('{}'); };
    if (new URL(req.url ?? '/', 'http://x').searchParams.get('gate') === '1') gated.push(answer);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  worker = await startLeaseWorker(nats.url, 'solo', { concurrency: 2 });
  log = await EventLog.open(worker.nc);
});
afterAll(async () => {
  await worker?.stop();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
});

const records = async (id: string): Promise<LogRecord[]> => {
  try { return (await loadExecution(log, id)).records.map((r) => r.record); } catch (err) { if (err instanceof ExecutionNotFoundError) return []; throw err; }
};
async function submit(definition: unknown): Promise<string> {
  const executionId = `slot-${randomUUID()}`;
  await worker.bus.publish('start', { executionId, definition, input: {} }, executionId);
  return executionId;
}

it('queued executions hold no worker slot: with 2 slots, one busy holder and two queued, another execution still runs', async () => {
  const limited = { id: 'limited', steps: [{ id: 'call', type: 'http', concurrency: [{ key: 'solo', limit: 1 }], request: { method: 'GET', url: `${url}/?gate=1` } }] };
  const holder = await submit(limited);
  await until('the holder to start', async () => (await records(holder)).some((r) => r.type === 'StepStarted'), 20_000);
  const queued = [await submit(limited), await submit(limited)];
  for (const id of queued) {
    await until(`${id} to be queued`, async () => (await records(id)).some((r) => r.type === 'StepQueued'), 20_000);
    await until(`${id} to be passivated`, async () => !worker.engine.runners.has(id), 20_000);
  }
  const other = await submit({ id: 'other', steps: [{ id: 'quick', type: 'transform', value: 'done' }] });
  await until('the other execution to complete', async () => (await records(other)).at(-1)?.type === 'ExecutionCompleted', 20_000);
  expect((await records(holder)).at(-1)?.type, 'the holder still runs').toBe('StepStarted');
  // Open the gate for the holder, then for each queued one as it gets the slot.
  const opener = setInterval(() => gated.splice(0).forEach((answer) => answer()), 50);
  try {
    for (const id of [holder, ...queued]) await until(`${id} to complete`, async () => (await records(id)).at(-1)?.type === 'ExecutionCompleted', 30_000);
  } finally {
    clearInterval(opener);
  }
}, 60_000);
