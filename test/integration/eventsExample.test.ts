/**
 * The README's "Event-driven" example, as written: examples/order-events.json
 * registered over HTTP, the order event published, the execution waiting, the
 * payment event published, the execution completed with its receipt; the
 * same order event again starts nothing (its idempotencyKey).
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { connectNats } from '../../src/nats/connect.js';
import { useNatsServer } from '../support/nats.js';
import { REPO, until } from '../support/processes.js';
import { http, useService, waitForStatus } from '../support/service.js';

const nats = useNatsServer();
const startService = useService(nats);

describe('README Event-driven example', () => {
  it('an order event starts the execution, the payment event finishes it', async () => {
    const { url } = await startService(); // the default events stream: SMARTSPEC_EVENTS over events.>
    const example = JSON.parse(await readFile(`${REPO}/examples/order-events.json`, 'utf8'));
    expect((await http(url, 'POST', '/workflows', example)).status).toBe(201);
    await new Promise((r) => setTimeout(r, 300));
    const nc = await connectNats(nats.url, 'example-test');
    // What `nats pub` does: a plain publish, which the stream stores.
    nc.publish('events.orders.placed', JSON.stringify({ orderId: 'o-1', amount: 42 }));
    const [execution] = await until('the triggered execution', async () => {
      const list = (await http(url, 'GET', '/executions?workflowId=order')).json.executions as { executionId: string }[];
      return list.length ? list : undefined;
    });
    expect(execution.executionId).toMatch(/^trg-order-/);
    await waitForStatus(url, execution.executionId, ['WAITING']);
    nc.publish('events.orders.placed', JSON.stringify({ orderId: 'o-1', amount: 42 })); // again: same key
    nc.publish('events.payments.settled', JSON.stringify({ orderId: 'o-1', method: 'card' }));
    const done = await waitForStatus(url, execution.executionId, ['COMPLETED']);
    expect(done.steps.receipt.output).toEqual({ orderId: 'o-1', paidWith: 'card' });
    await new Promise((r) => setTimeout(r, 1000));
    expect((await http(url, 'GET', '/executions?workflowId=order')).json.executions).toHaveLength(1);
    await nc.close();
  }, 60_000);
});
