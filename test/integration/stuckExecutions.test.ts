/**
 * The stuck-execution sweep (src/recovery), on a real nats-server with a real
 * worker: an execution the index lists as RUNNING, whose log has been quiet and
 * that no live process hosts (its host went away, and no command holds it), is
 * sent to a worker by a `recover` command and continued to its end; one with a
 * live host, or quiet for less than the threshold, is left alone.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { ExecutionIndex } from '../../src/registry/executionIndex.js';
import { CommandBus } from '../../src/bus/commands.js';
import { Engine } from '../../src/worker/engine.js';
import { Worker } from '../../src/worker/worker.js';
import { StuckSweeper } from '../../src/recovery/stuckExecutions.js';
import { def, types } from '../support/engine.js';
import { useNatsServer } from '../support/nats.js';
import { until } from '../support/processes.js';

const nats = useNatsServer();
let nc: NatsConnection;
let log: EventLog;
let index: ExecutionIndex;
let bus: CommandBus;
let server: Server;
let url = '';
/** Requests answered only once let go (by id). */
const held = new Map<string, () => void>();

beforeAll(async () => {
  nc = await connectNats(nats.url, 'stuck-test');
  log = await EventLog.open(nc);
  index = await ExecutionIndex.open(nc);
  await index.watch();
  bus = await CommandBus.open(nc, { consumer: { ackWaitMs: 5000 } });
  server = createServer((req, res) => {
    const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id') ?? '';
    const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    // The first request of an id starting with "hold" is held until let go; any other is answered.
    if (id.startsWith('hold') && !held.has(id)) held.set(id, answer);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
});
afterAll(async () => {
  for (const [id, answer] of held) if (id !== 'hold-2') answer();
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  index?.close();
  await nc?.close();
});

const calling = (id: string) => def({ id: 'calls', steps: [{ id: 'call', type: 'http', request: { method: 'GET', url: `${url}?id=${id}` } }, { id: 'after', type: 'transform', value: 'done' }] });
const sweeper = (quietMs: number) => new StuckSweeper({ nc, log, index, bus, logger: pino({ level: 'silent' }) }, quietMs);

describe('the stuck-execution sweep', () => {
  it('sends a running execution nobody hosts to a worker, which continues it to the end; a second sweep finds nothing', async () => {
    // Its host goes away mid-step, leaving no command behind (as a host that acked its command and then fell away).
    const gone = await Engine.create({ nc, log, index, owner: 'gone' });
    const runner = await gone.start({ definition: calling('hold-stuck'), executionId: 'stuck-1' });
    await until('the request to be made', async () => held.has('hold-stuck') && (await index.get('stuck-1'))?.status === 'RUNNING', 5000, 20);
    await gone.close();
    await runner.done.catch(() => undefined);
    const engine = await Engine.create({ nc, log, index, owner: 'worker' });
    const worker = new Worker({ engine, bus, logger: pino({ level: 'silent' }), ackWaitMs: 5000 });
    await worker.start();
    try {
      const sweep = sweeper(300);
      await new Promise((r) => setTimeout(r, 400)); // quiet for longer than 300 ms
      expect(await sweep.sweep()).toBe(1);
      await until('the execution to complete', async () => (await log.last('stuck-1'))?.record.type === 'ExecutionCompleted', 10_000, 50);
      const history = types(await log.read('stuck-1'));
      expect(history).toContain('ExecutionResumed'); // continued from its log: the interrupted step again
      await until('the index to say COMPLETED', async () => (await index.get('stuck-1'))?.status === 'COMPLETED', 5000, 50);
      expect(await sweep.sweep()).toBe(0);
    } finally {
      await worker.stop();
    }
  });

  it('leaves alone a running execution whose host lives, and one quiet for less than the threshold', async () => {
    const host = await Engine.create({ nc, log, index, owner: 'alive' });
    try {
      const runner = await host.start({ definition: calling('hold-2'), executionId: 'hold-2' });
      await until('the request to be held', async () => held.has('hold-2') && (await index.get('hold-2'))?.status === 'RUNNING', 5000, 20);
      await new Promise((r) => setTimeout(r, 400));
      expect(await sweeper(300).sweep()).toBe(0); // hosted: it answers the ping
      expect(await sweeper(60_000).sweep()).toBe(0); // not quiet for long enough
      held.get('hold-2')!();
      expect((await runner.done).status).toBe('COMPLETED');
    } finally {
      await host.close();
    }
  });
});
