/**
 * waitForEvent against a real nats-server and real workers: the first
 * matching event published after the step started completes it (earlier and
 * non-matching events do not), EVENT_TIMEOUT on its durable deadline, and an
 * event published while no worker runs at all is delivered once one is back.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connectNats } from '../../src/nats/connect.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';

const nats = useNatsServer();
const startService = useService(nats);
const env = { SMARTSPEC_EVENTS_SUBJECTS: 'payments.>', LOG_LEVEL: 'warn' };
let nc: NatsConnection;
let js: JetStreamClient;

beforeAll(async () => {
  nc = await connectNats(nats.url, 'wait-test');
  js = jetstream(nc);
  return () => nc.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const checkout = (timeoutMs = 60_000) => ({
  id: 'checkout',
  steps: [
    { id: 'order', type: 'transform', value: { orderId: '{{input.orderId}}' } },
    { id: 'paid', type: 'waitForEvent', subject: 'payments.settled', match: '{% event.orderId = steps.order.output.orderId %}', timeoutMs },
    { id: 'receipt', type: 'transform', value: { amount: '{{steps.paid.output.data.amount}}' } },
  ],
});
const publish = (orderId: string, amount: number) => js.publish('payments.settled', JSON.stringify({ orderId, amount }));
async function start(base: string, definition: unknown, input: unknown): Promise<string> {
  const r = await http(base, 'POST', '/executions', { definition, input });
  expect(r.status, r.text).toBe(202);
  return r.json.executionId;
}

describe('waitForEvent', () => {
  let base: string;
  beforeAll(async () => {
    const service = await startService({ env });
    base = service.url;
    return () => service.stop(); // the restart case below needs a moment with no worker at all
  });

  it('completes with the first matching event published after it started; others leave it waiting', async () => {
    await publish('A', 1); // before the step started: never its event
    const a = await start(base, checkout(), { orderId: 'A' });
    const b = await start(base, checkout(), { orderId: 'B' });
    await waitForStatus(base, a, ['WAITING']);
    await waitForStatus(base, b, ['WAITING']);
    await publish('Z', 9); // matches nobody
    await sleep(1000);
    expect((await http(base, 'GET', `/executions/${a}`)).json.status).toBe('WAITING');

    await publish('A', 5);
    await publish('A', 6); // a later match: the first one wins
    const done = await waitForStatus(base, a, ['COMPLETED', 'FAILED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.steps.receipt.output).toEqual({ amount: 5 });
    expect(done.steps.paid.output).toMatchObject({ subject: 'payments.settled', seq: expect.any(Number), data: { orderId: 'A', amount: 5 } });
    expect((await http(base, 'GET', `/executions/${b}`)).json.status).toBe('WAITING');

    await publish('B', 7);
    expect((await waitForStatus(base, b, ['COMPLETED'])).steps.receipt.output).toEqual({ amount: 7 });
  }, 40_000);

  it('fails with EVENT_TIMEOUT when its deadline passes', async () => {
    const id = await start(base, checkout(1500), { orderId: 'never' });
    const failed = await waitForStatus(base, id, ['FAILED', 'COMPLETED'], 15_000);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatchObject({ code: 'EVENT_TIMEOUT' });
  }, 30_000);

  it('refuses a match that is not an expression, naming the path', async () => {
    const def = checkout();
    (def.steps[1] as { match: string }).match = 'event.orderId';
    const r = await http(base, 'POST', '/executions', { definition: def, input: {} });
    expect(r.status).toBe(422);
    expect(JSON.stringify(r.json.errors)).toMatch(/definition\.steps\[1\]\.match.*must be a \{% … %\} expression/);
  });
});

describe('waitForEvent across a restart', () => {
  it('an event published while no worker runs completes the wait once a worker is back', async () => {
    const edge = await startService({ worker: false, env });
    const worker = await startService({ edge: false, env });
    const id = await start(edge.url, checkout(), { orderId: 'R' });
    await waitForStatus(edge.url, id, ['WAITING']);
    await worker.stop();
    await publish('R', 42); // no worker anywhere
    await sleep(500);
    expect((await http(edge.url, 'GET', `/executions/${id}`)).json.status).toBe('WAITING');
    await startService({ edge: false, env });
    expect((await waitForStatus(edge.url, id, ['COMPLETED'], 20_000)).steps.receipt.output).toEqual({ amount: 42 });
  }, 60_000);
});
