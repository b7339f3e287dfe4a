/**
 * Event triggers against a real nats-server and two real workers: one
 * execution per distinct event (duplicates by message id or by idempotency
 * key start nothing more), filters and input expressions, the triggering event
 * in ExecutionStarted, a new version taking the trigger over, and bad triggers
 * refused at registration naming the path.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { connectNats } from '../../src/nats/connect.js';
import { useNatsServer } from '../support/nats.js';
import { until } from '../support/processes.js';
import { http, useService } from '../support/service.js';

const nats = useNatsServer();
const startService = useService(nats);
const env = { SMARTSPEC_EVENTS_STREAM: 'USER_EVENTS', SMARTSPEC_EVENTS_SUBJECTS: 'users.>,orders.>' };
let base: string;
let nc: NatsConnection;
let js: JetStreamClient;

beforeAll(async () => {
  base = (await startService({ env })).url;
  await startService({ edge: false, env }); // a second worker shares the durable consumer
  nc = await connectNats(nats.url, 'triggers-test');
  js = jetstream(nc);
  return () => nc.close();
});

type Execution = { executionId: string; status: string };
const executionsOf = async (workflowId: string) => (await http(base, 'GET', `/executions?workflowId=${workflowId}&limit=1000`)).json.executions as Execution[];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const register = async (definition: unknown) => {
  const r = await http(base, 'POST', '/workflows', definition);
  expect(r.status, r.text).toBe(201);
  return r.json;
};
/** Wait for `n` completed executions, then make sure no more arrive. */
async function expectExactly(workflowId: string, n: number): Promise<Execution[]> {
  await until(`${n} completed executions of ${workflowId}`, async () => {
    const ex = await executionsOf(workflowId);
    return ex.length >= n && ex.every((e) => e.status === 'COMPLETED');
  }, 30_000, 200).catch(async (err: Error) => {
    // Which ones, as listed and as their logs say.
    const ex = await executionsOf(workflowId);
    const behind = await Promise.all(ex.filter((e) => e.status !== 'COMPLETED').map(async (e) => {
      const events = (await http(base, 'GET', `/executions/${e.executionId}/events`)).json.events as { type: string; at: string }[];
      return `${e.executionId}: listed ${e.status}, log ${events.map((r) => `${r.type}@${r.at.slice(17)}`).join(' ')}`;
    }));
    throw new Error(`${err.message}: ${ex.length} listed; not COMPLETED: ${behind.join('; ') || 'none'}`);
  });
  await sleep(1500);
  const ex = await executionsOf(workflowId);
  expect(ex).toHaveLength(n);
  return ex;
}
const startedRecord = async (id: string) => (await http(base, 'GET', `/executions/${id}/events`)).json.events[0];

describe('triggers', () => {
  it('100 events, 10 of them published twice with one message id: exactly 100 executions, each recording its event', async () => {
    await register({ id: 'onboard', triggers: [{ subject: 'users.created' }], steps: [{ id: 'welcome', type: 'transform', value: { hello: '{{input.name}}' } }] });
    for (let i = 0; i < 100; i++) {
      const h = natsHeaders();
      h.set('Authorization', 'Bearer not-for-the-log');
      h.set('X-Source', 'signup');
      await js.publish('users.created', JSON.stringify({ id: i, name: `user${i}` }), { msgID: `user-${i}`, headers: h });
      if (i % 10 === 0) await js.publish('users.created', JSON.stringify({ id: i, name: `user${i}` }), { msgID: `user-${i}`, headers: h }); // a duplicate
    }
    const executions = await expectExactly('onboard', 100);
    const started = await startedRecord(executions[0].executionId);
    expect(started.trigger).toMatchObject({ subject: 'users.created', stream: 'USER_EVENTS', seq: expect.any(Number) });
    expect(started.trigger.headers).toMatchObject({ 'X-Source': 'signup', 'Nats-Msg-Id': expect.stringMatching(/^user-\d+$/) });
    expect(started.trigger.headers.Authorization).toBeUndefined();
    expect(started.principal).toEqual({ tenant: 'default', keyId: 'trigger:onboard' });
    const names = new Set<string>();
    for (const e of executions.slice(0, 20)) {
      const s = (await http(base, 'GET', `/executions/${e.executionId}`)).json;
      names.add(s.steps.welcome.output.hello);
    }
    expect(names.size).toBe(20);
  }, 60_000);

  it('an idempotencyKey expression: the same order published 3 times without message ids starts one execution', async () => {
    await register({
      id: 'fulfil',
      triggers: [{ subject: 'orders.*', filter: "{% subject = 'orders.placed' %}", idempotencyKey: '{% event.orderId %}', input: { order: '{% event.orderId %}', total: '{% $sum(event.lines.price) %}' } }],
      steps: [{ id: 'ship', type: 'transform', value: { order: '{{input.order}}', total: '{{input.total}}' } }],
    });
    for (let i = 0; i < 10; i++) for (let copy = 0; copy < 3; copy++) await js.publish('orders.placed', JSON.stringify({ orderId: `o-${i}`, lines: [{ price: 2 }, { price: 3 }] }));
    await js.publish('orders.cancelled', JSON.stringify({ orderId: 'o-99', lines: [] })); // the filter refuses it
    const executions = await expectExactly('fulfil', 10);
    const s = (await http(base, 'GET', `/executions/${executions[0].executionId}`)).json;
    expect(s.steps.ship.output).toEqual({ order: expect.stringMatching(/^o-\d$/), total: 5 });
  }, 60_000);

  it('a filter that rejects half the events: 50 executions', async () => {
    await register({ id: 'evens', triggers: [{ subject: 'users.scored', filter: '{% event.n % 2 = 0 %}', input: "{% {'n': event.n} %}" }], steps: [{ id: 'keep', type: 'transform', value: '{{input.n}}' }] });
    for (let n = 0; n < 100; n++) await js.publish('users.scored', JSON.stringify({ n }));
    const executions = await expectExactly('evens', 50);
    const outputs = await Promise.all(executions.slice(0, 10).map(async (e) => (await http(base, 'GET', `/executions/${e.executionId}`)).json.steps.keep.output as number));
    for (const n of outputs) expect(n % 2).toBe(0);
  }, 60_000);

  it('a new version takes the trigger over; a version without triggers stops them', async () => {
    const step = (v: string) => [{ id: 'mark', type: 'transform', value: v }];
    await register({ id: 'versioned', triggers: [{ subject: 'users.deleted' }], steps: step('v1') });
    await js.publish('users.deleted', JSON.stringify({ id: 1 }));
    const [first] = await expectExactly('versioned', 1);
    expect((await startedRecord(first.executionId)).definition.version).toBe(1);

    await register({ id: 'versioned', triggers: [{ subject: 'users.deleted' }], steps: step('v2') });
    await sleep(300); // the workers' mirror of the registry follows within milliseconds
    await js.publish('users.deleted', JSON.stringify({ id: 2 }));
    const two = await expectExactly('versioned', 2);
    const second = two.find((e) => e.executionId !== first.executionId)!;
    expect((await startedRecord(second.executionId)).definition.version).toBe(2);

    await register({ id: 'versioned', steps: step('v3') });
    await sleep(300);
    await js.publish('users.deleted', JSON.stringify({ id: 3 }));
    await sleep(1500);
    expect(await executionsOf('versioned')).toHaveLength(2);
  }, 60_000);

  it('refuses bad triggers at registration, naming the path', async () => {
    const bad = async (trigger: unknown, path: string, message: RegExp) => {
      const r = await http(base, 'POST', '/workflows', { id: 'bad', triggers: [trigger], steps: [{ id: 'a', type: 'transform', value: 1 }] });
      expect(r.status, r.text).toBe(422);
      expect(r.json.errors).toContainEqual({ path, message: expect.stringMatching(message) });
    };
    await bad({ subject: 'users..created' }, 'triggers[0].subject', /is not a NATS subject/);
    await bad({ subject: 'smartspec.cmd.start' }, 'triggers[0].subject', /reserved/);
    await bad({ subject: 'users.created', filter: 'event.ok' }, 'triggers[0].filter', /must be a \{% … %\} expression/);
    await bad({ subject: 'users.created', filter: '{% event.ok = %}' }, 'triggers[0].filter', /does not parse/);
    await bad({ subject: 'users.created', input: { a: '{% ( %}' } }, 'triggers[0].input.a', /does not parse/);
    expect((await http(base, 'GET', '/workflows')).status).toBe(200);
  });
});
