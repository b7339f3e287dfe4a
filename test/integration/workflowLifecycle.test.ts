/**
 * Disabling, enabling and deleting a workflow, against a real nats-server and a
 * real service with API keys: its triggers stop starting executions (events
 * published before and after), submissions of it are refused with a problem,
 * its schedules record skipped firings with the reason, executions already
 * running go on, and their history stays readable. Another tenant's workflow
 * is a 404. Driven through the typed client where it has the call.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { KeyStore } from '../../src/auth/keys.js';
import { ConflictError, NotFoundError, SmartSpecClient } from '../../src/client/index.js';
import { connectNats } from '../../src/nats/connect.js';
import { useNatsServer } from '../support/nats.js';
import { until } from '../support/processes.js';
import { http, useService } from '../support/service.js';

const nats = useNatsServer();
const startService = useService(nats);
let base: string;
let nc: NatsConnection;
let js: JetStreamClient;
let acme: SmartSpecClient;
const keys = {} as Record<'acmeWrite' | 'acmeRead' | 'betaWrite', string>;
const as = (key: string) => ({ authorization: `Bearer ${key}` });

beforeAll(async () => {
  nc = await connectNats(nats.url, 'workflow-lifecycle-test');
  js = jetstream(nc);
  const store = await KeyStore.open(nc);
  keys.acmeWrite = (await store.create({ tenant: 'acme', scopes: ['read', 'write'] })).key;
  keys.acmeRead = (await store.create({ tenant: 'acme', scopes: ['read'] })).key;
  keys.betaWrite = (await store.create({ tenant: 'beta', scopes: ['read', 'write'] })).key;
  base = (await startService()).url;
  acme = new SmartSpecClient({ baseUrl: base, apiKey: keys.acmeWrite });
  return () => nc.close();
}, 30_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The workers' mirror of the registry follows a change within milliseconds. */
const MIRROR_MS = 300;
const executionsOf = (workflowId: string) => acme.list({ workflowId, limit: 1000 });
async function expectCount(workflowId: string, n: number, settleMs = 1500) {
  await until(`${n} executions of ${workflowId}`, async () => (await executionsOf(workflowId)).length >= n, 20_000, 100);
  await sleep(settleMs); // and no more
  const all = await executionsOf(workflowId);
  expect(all).toHaveLength(n);
  return all;
}
const waitFor = (id: string, status: string) => until(`${id} ${status}`, async () => (await acme.get(id)).status === status, 15_000, 50);

describe('disabling and deleting a workflow', () => {
  it('stops its triggers and refuses submissions; running executions go on; enabling restarts the triggers; deleting stops it for good', async () => {
    const definition = {
      id: 'onboard',
      triggers: [{ subject: 'events.users.created', input: '{% event %}' }],
      steps: [{ id: 'hello', type: 'transform', value: 'hi {{input.n}}' }, { id: 'go', type: 'signal' }, { id: 'done', type: 'transform', value: '{{steps.go.output}}' }],
    };
    await acme.workflows.register(definition);
    await sleep(MIRROR_MS);
    await js.publish('events.users.created', JSON.stringify({ n: 1 }));
    const [triggered] = await expectCount('onboard', 1, 0);
    const submitted = (await acme.start({ workflowId: 'onboard', input: { n: 'manual' } })).executionId;
    await waitFor(triggered.executionId, 'WAITING');
    await waitFor(submitted, 'WAITING');

    // Another tenant, and a read-only key, cannot disable it.
    const other = await http(base, 'POST', '/workflows/onboard/disable', undefined, as(keys.betaWrite));
    expect(other.status).toBe(404);
    expect(other.json).toMatchObject({ code: 'WORKFLOW_NOT_FOUND' });
    expect(other.headers.get('content-type')).toMatch(/problem\+json/);
    expect((await http(base, 'POST', '/workflows/onboard/disable', undefined, as(keys.acmeRead))).status).toBe(403);

    const disabled = await acme.workflows.disable('onboard');
    expect(disabled).toMatchObject({ id: 'onboard', version: 1, disabled: true, disabledAt: expect.any(String) });
    expect((await acme.workflows.disable('onboard')).disabledAt).toBe(disabled.disabledAt); // twice: unchanged
    expect(await acme.workflows.list()).toEqual([expect.objectContaining({ id: 'onboard', disabled: true })]);
    await sleep(MIRROR_MS);
    for (const n of [2, 3]) await js.publish('events.users.created', JSON.stringify({ n }));

    for (const version of [undefined, 1]) {
      const refused = await acme.start({ workflowId: 'onboard', ...(version ? { version } : {}) }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(ConflictError);
      expect((refused as ConflictError).problem).toMatchObject({ status: 409, code: 'WORKFLOW_DISABLED', detail: expect.stringMatching(/workflow 'onboard' is disabled .*enable it/) });
    }
    // The executions already running are not touched: they take their signal and complete.
    for (const id of [triggered.executionId, submitted]) {
      await acme.signal(id, 'go', { ok: id });
      await waitFor(id, 'COMPLETED');
    }
    await expectCount('onboard', 2);

    // A new version keeps it disabled; enabling restarts the triggers (with the new version), not for the events it let pass.
    expect(await acme.workflows.register({ ...definition, steps: [{ id: 'hello', type: 'transform', value: 'v2 {{input.n}}' }] })).toMatchObject({ version: 2, disabled: true });
    expect(await acme.workflows.enable('onboard')).toMatchObject({ version: 2, disabled: false });
    expect((await acme.workflows.get('onboard')).disabledAt).toBeUndefined();
    await sleep(MIRROR_MS);
    await js.publish('events.users.created', JSON.stringify({ n: 4 }));
    const afterEnable = await expectCount('onboard', 3);
    const third = afterEnable.find((e) => e.executionId !== triggered.executionId && e.executionId !== submitted)!;
    await waitFor(third.executionId, 'COMPLETED');
    expect((await acme.get(third.executionId)).output).toBe('v2 4');

    // Delete: another tenant's delete is a 404; then every version is gone and nothing starts it.
    expect((await http(base, 'DELETE', '/workflows/onboard', undefined, as(keys.betaWrite))).status).toBe(404);
    await acme.workflows.delete('onboard');
    await sleep(MIRROR_MS);
    await js.publish('events.users.created', JSON.stringify({ n: 5 }));
    for (const version of [undefined, 1, 2]) {
      const gone = await acme.workflows.get('onboard', { version }).catch((e: unknown) => e);
      expect(gone).toBeInstanceOf(NotFoundError);
    }
    const refused = await acme.start({ workflowId: 'onboard' }).catch((e: unknown) => e);
    expect((refused as NotFoundError).problem).toMatchObject({ status: 404, code: 'WORKFLOW_NOT_FOUND' });
    expect(await acme.workflows.list()).toEqual([]);
    expect((await acme.workflows.delete('onboard').catch((e: unknown) => e)) as NotFoundError).toBeInstanceOf(NotFoundError);
    // Its executions stay, with their history.
    const kept = await expectCount('onboard', 3);
    const history = await acme.history(triggered.executionId);
    expect(history.map((e) => e.type)).toContain('ExecutionCompleted');
    expect(kept.map((e) => e.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
    // The same id can be registered afresh.
    expect(await acme.workflows.register(definition)).toMatchObject({ id: 'onboard', version: 1, disabled: false });
    await acme.workflows.delete('onboard');
  }, 90_000);

  it("a disabled or deleted workflow's schedule records skipped firings with the reason and starts nothing", async () => {
    await acme.workflows.register({ id: 'ticker', steps: [{ id: 'tick', type: 'transform', value: 1 }] });
    const created = await http(base, 'POST', '/schedules', { id: 'every-second', workflowId: 'ticker', every: '1s' }, as(keys.acmeWrite));
    expect(created.status, created.text).toBe(201);
    await expectCount('ticker', 1, 0);

    await acme.workflows.disable('ticker');
    await sleep(600); // a firing claimed just before the disable may still start
    const before = (await executionsOf('ticker')).length;
    await sleep(2500);
    expect(await executionsOf('ticker')).toHaveLength(before);
    const history = async () => (await http(base, 'GET', '/schedules/every-second', undefined, as(keys.acmeWrite))).json.history as { kind: string; count?: number; reason?: string }[];
    const [latest] = await history(); // newest first
    // One entry for the whole run of skipped firings, however long it lasts.
    expect(latest).toMatchObject({ kind: 'skipped', reason: "workflow 'ticker' is disabled", count: expect.any(Number) });
    expect(latest.count).toBeGreaterThanOrEqual(2);
    const trigger = await http(base, 'POST', '/schedules/every-second/trigger', undefined, as(keys.acmeWrite));
    expect(trigger.status).toBe(409);
    expect(trigger.json.code).toBe('WORKFLOW_DISABLED');

    await acme.workflows.delete('ticker');
    await until('a firing skipped because the workflow is gone', async () => (await history())[0].reason?.includes('does not exist'), 5000, 100);
    expect(await executionsOf('ticker')).toHaveLength(before);
    expect((await http(base, 'DELETE', '/schedules/every-second', undefined, as(keys.acmeWrite))).status).toBe(204);
  }, 60_000);

  it('refuses bad ids and unknown workflows with problems', async () => {
    const bad = await http(base, 'POST', '/workflows/not%20an%20id/disable', undefined, as(keys.acmeWrite));
    expect(bad.status).toBe(422);
    expect(bad.json.errors).toContainEqual({ path: 'params.id', message: expect.stringMatching(/is not a workflow id/) });
    for (const [method, path] of [['POST', '/workflows/nope/enable'], ['DELETE', '/workflows/nope']]) {
      const r = await http(base, method, path, undefined, as(keys.acmeWrite));
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.json).toMatchObject({ code: 'WORKFLOW_NOT_FOUND', detail: "workflow 'nope' not found" });
    }
  });
});
