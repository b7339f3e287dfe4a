/**
 * waitForEvent's `after` against a real nats-server and a real worker: events
 * published since that time (a template, an expression, or a literal time)
 * count even when they came before the step started; events before it do not,
 * nor, with a time still to come, the events published before it. Bad values
 * are refused naming the path, at registration or when the step starts.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connectNats } from '../../src/nats/connect.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';

const nats = useNatsServer();
const startService = useService(nats);
const env = { SMARTSPEC_EVENTS_SUBJECTS: 'payments.>' };
let nc: NatsConnection;
let js: JetStreamClient;
let base: string;

beforeAll(async () => {
  nc = await connectNats(nats.url, 'wait-after-test');
  js = jetstream(nc);
  base = (await startService({ env })).url;
  return () => nc.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const checkout = (after: string) => ({
  id: 'checkout-after',
  steps: [
    { id: 'order', type: 'transform', value: { orderId: '{{input.orderId}}' } },
    { id: 'paid', type: 'waitForEvent', subject: 'payments.settled', match: '{% event.orderId = steps.order.output.orderId %}', after, timeoutMs: 60_000 },
    { id: 'receipt', type: 'transform', value: { amount: '{{steps.paid.output.data.amount}}' } },
  ],
});
const publish = (orderId: string, amount: number) => js.publish('payments.settled', JSON.stringify({ orderId, amount }));
async function start(definition: unknown, input: unknown): Promise<string> {
  const r = await http(base, 'POST', '/executions', { definition, input });
  expect(r.status, r.text).toBe(202);
  return r.json.executionId;
}

describe('waitForEvent after', () => {
  it('takes the first matching event published since `after` (a template or an expression), even before the step started', async () => {
    await publish('C', 1);
    await publish('D', 1);
    await sleep(50);
    const since = new Date().toISOString();
    await sleep(50);
    await publish('C', 2);
    await publish('D', 3);
    await publish('C', 4);

    const viaTemplate = await start(checkout('{{input.since}}'), { orderId: 'C', since });
    const viaExpression = await start(checkout('{% input.since %}'), { orderId: 'D', since });
    expect((await waitForStatus(base, viaTemplate, ['COMPLETED', 'FAILED'])).steps.receipt.output).toEqual({ amount: 2 });
    expect((await waitForStatus(base, viaExpression, ['COMPLETED', 'FAILED'])).steps.receipt.output).toEqual({ amount: 3 });
    const started = (await http(base, 'GET', `/executions/${viaTemplate}/events`)).json.events.find((e: { type: string; stepId?: string }) => e.type === 'StepStarted' && e.stepId === 'paid');
    expect(started).toMatchObject({ after: since, afterSeq: expect.any(Number) });

    // Without `after`, the same events are before the step started: it waits.
    const plain = checkout(since);
    delete (plain.steps[1] as { after?: string }).after;
    const waiting = await start(plain, { orderId: 'C' });
    await waitForStatus(base, waiting, ['WAITING']);
    await sleep(1000);
    expect((await http(base, 'GET', `/executions/${waiting}`)).json.status).toBe('WAITING');
    await http(base, 'POST', `/executions/${waiting}/cancel`, {});
  }, 40_000);

  it('with a time still to come, an event published before it does not count', async () => {
    const afterMs = Date.now() + 4000;
    const id = await start(checkout(new Date(afterMs).toISOString()), { orderId: 'F' });
    await waitForStatus(base, id, ['WAITING']);
    await publish('F', 1);
    expect(Date.now(), 'published before `after`').toBeLessThan(afterMs - 500);
    await sleep(afterMs - Date.now() + 100);
    expect((await http(base, 'GET', `/executions/${id}`)).json.status).toBe('WAITING');
    await publish('F', 2);
    expect((await waitForStatus(base, id, ['COMPLETED', 'FAILED'])).steps.receipt.output).toEqual({ amount: 2 });
  }, 30_000);

  it('refuses a bad `after` naming the path, and fails the step when a template gives no time', async () => {
    const bad = await http(base, 'POST', '/workflows', checkout('yesterday'));
    expect(bad.status).toBe(422);
    expect(bad.json.errors).toContainEqual({ path: 'steps[1].after', message: expect.stringMatching(/'yesterday' is not an ISO-8601 time.*nor a \{\{…\}\} template or \{% … %\} expression/) });
    const unknown = await http(base, 'POST', '/workflows', checkout('{{steps.nope.output}}'));
    expect(unknown.status).toBe(422);
    expect(unknown.json.errors).toContainEqual(expect.objectContaining({ path: 'steps[1].after' }));
    const broken = await http(base, 'POST', '/workflows', checkout('{% input.since = %}'));
    expect(broken.status).toBe(422);
    expect(broken.json.errors).toContainEqual(expect.objectContaining({ path: 'steps[1].after' }));

    const id = await start(checkout('{{input.since}}'), { orderId: 'G', since: 'not a time' });
    const failed = await waitForStatus(base, id, ['FAILED', 'COMPLETED']);
    expect(failed.error).toMatchObject({ code: 'INVALID_WAIT_AFTER', message: expect.stringMatching(/step 'paid': after must be an ISO-8601 time.*it is "not a time"/) });
  }, 30_000);
});
