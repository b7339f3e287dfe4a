/**
 * Passivation lets go of an execution only while it is still idle. A worker
 * decides to passivate when its runner settles at WAITING, but another command
 * (a wake, a signal) can set the execution going in the moment after: letting
 * it go then cut off the step it had just started, and whoever took it over ran
 * that step again (seen under load as a request made twice by one execution).
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { def, types, useEngine } from '../support/engine.js';
import { useNatsServer } from '../support/nats.js';
import { until } from '../support/processes.js';

const nats = useNatsServer();
const fx = useEngine(nats);

let server: Server;
let url = '';
let requests = 0;
beforeAll(async () => {
  // Answers each request after 300 ms: the step is running for that long.
  server = createServer((_req, res) => { requests++; setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}'), 300); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

describe('passivation', () => {
  it('is refused for a runner set going again since it settled, and the step it started runs once, to the end', async () => {
    const engine = await fx.engine();
    const definition = def({ id: 'woken', steps: [{ id: 'go', type: 'signal' }, { id: 'call', type: 'http', request: { method: 'GET', url } }] });
    const runner = await engine.start({ definition });
    const settled = await runner.settled({ wakeWithinMs: 0 });
    expect(settled.status).toBe('WAITING');
    // The worker has seen WAITING; before it lets go, a signal comes and the request goes out.
    await engine.signal(runner.executionId, 'go', {});
    await until('the request to be made', async () => requests === 1);
    expect(engine.passivate(runner, 0)).toBe(false);
    const { status } = await runner.done;
    expect(status).toBe('COMPLETED');
    expect(requests).toBe(1);
    expect(types(await fx.log.read(runner.executionId))).not.toContain('ExecutionResumed');
  });

  it('lets go of a runner still idle at WAITING', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({ definition: def({ id: 'idle', steps: [{ id: 'go', type: 'signal' }] }) });
    await runner.settled({ wakeWithinMs: 0 });
    expect(engine.passivate(runner, 0)).toBe(true);
    expect(runner.isStopped).toBe(true);
    await until('the engine to drop it', async () => !engine.runners.has(runner.executionId));
  });
});
