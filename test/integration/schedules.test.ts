/**
 * Schedules against a real nats-server and real workers: firings missed while
 * no scheduler ran are caught up per policy; two schedulers (two workers) fire
 * an every-second schedule once per second, never twice for one instant; pause,
 * resume, trigger and delete over HTTP; bad input refused naming the field.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { CommandBus } from '../../src/bus/commands.js';
import { connectNats } from '../../src/nats/connect.js';
import { WorkflowRegistry } from '../../src/registry/workflows.js';
import { FiringStarter } from '../../src/schedules/firing.js';
import { createSchedule } from '../../src/schedules/operations.js';
import { Scheduler } from '../../src/schedules/scheduler.js';
import { ScheduleStore, type HistoryEntry } from '../../src/schedules/scheduleStore.js';
import { def } from '../support/engine.js';
import { useNatsServer } from '../support/nats.js';
import { until } from '../support/processes.js';
import { http, useService, waitForStatus } from '../support/service.js';

const nats = useNatsServer();
const startService = useService(nats);
let nc: NatsConnection;
let store: ScheduleStore;
let workflows: WorkflowRegistry;
let bus: CommandBus;

beforeAll(async () => {
  nc = await connectNats(nats.url, 'schedules-test');
  [store, workflows, bus] = await Promise.all([ScheduleStore.open(nc), WorkflowRegistry.open(nc), CommandBus.open(nc)]);
});
afterAll(async () => {
  await nc?.close();
});

const tick = (id: string) => ({ id, steps: [{ id: 'stamp', type: 'transform', value: { input: '{{input}}' } }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const kinds = (h: HistoryEntry[]) => h.map((e) => e.kind);

describe('catch-up after every scheduler was down for 5 s', () => {
  it('none skips the missed firings, last starts the newest, all starts each of them', async () => {
    await workflows.register(def(tick('catchup')));
    const created = new Date();
    for (const catchup of ['none', 'last', 'all'] as const) {
      await createSchedule(store, workflows, { id: `catchup-${catchup}`, workflowId: 'catchup', every: '1s', catchup }, 'default', created);
    }
    // The outage: no scheduler runs for 5.7 s (firings at +1 s … +5 s fall due; +5 s is over half an interval late).
    const back = created.getTime() + 5700;
    await sleep(back - Date.now());
    // The scheduler comes back; its clock is held at that instant so what counts as late is exact.
    const scheduler = new Scheduler(store, new FiringStarter(workflows, bus), { now: () => back, tickMs: 50 });
    scheduler.start();
    try {
      const history = async (catchup: string) => (await store.get('default', `catchup-${catchup}`)).history;
      await until('every schedule to have dealt with its missed firings', async () => (await Promise.all(['none', 'last', 'all'].map(history))).every((h) => h.length > 0));
      await sleep(300); // more rounds at the same instant must change nothing
      const at = (s: number) => new Date(created.getTime() + s * 1000).toISOString();

      const none = await history('none');
      expect(none).toEqual([expect.objectContaining({ kind: 'skipped', at: at(1), until: at(5), count: 5, policy: 'none' })]);

      const last = await history('last');
      expect(kinds(last)).toEqual(['skipped', 'caught-up']);
      expect(last[0]).toMatchObject({ at: at(1), until: at(4), count: 4, policy: 'last' });
      expect(last[1]).toMatchObject({ at: at(5), executionId: expect.stringMatching(/^sched-catchup-last-\d{8}T\d{6}(\d{3})?Z$/) });

      const all = await history('all');
      expect(kinds(all)).toEqual(['caught-up', 'caught-up', 'caught-up', 'caught-up', 'caught-up']);
      expect(all.map((e) => e.at)).toEqual([1, 2, 3, 4, 5].map(at));
      expect(new Set(all.map((e) => e.executionId)).size).toBe(5);
    } finally {
      scheduler.stop();
      for (const c of ['none', 'last', 'all']) await store.remove('default', `catchup-${c}`);
    }
  }, 20_000);
});

describe('over HTTP with two schedulers (two workers)', () => {
  let base: string;
  beforeAll(async () => {
    base = (await startService()).url; // edge + worker (a scheduler)
    await startService({ edge: false }); // a second worker (a second scheduler)
    expect((await http(base, 'POST', '/workflows', tick('heartbeat'))).status).toBe(201);
  });

  const executionsOf = async (workflowId: string) => (await http(base, 'GET', `/executions?workflowId=${workflowId}&limit=1000`)).json.executions as { executionId: string; status: string }[];

  it('refuses bad schedules, naming the field', async () => {
    const bad = async (body: unknown, field: RegExp) => {
      const r = await http(base, 'POST', '/schedules', body);
      expect(r.status, r.text).toBe(422);
      expect(JSON.stringify(r.json.errors)).toMatch(field);
    };
    await bad({ workflowId: 'heartbeat' }, /body\.cron.*exactly one of cron or every/);
    await bad({ workflowId: 'heartbeat', cron: '* * * * *', every: '1m' }, /exactly one of cron or every/);
    await bad({ workflowId: 'heartbeat', cron: '0 25 * * *' }, /body\.cron.*is not valid/);
    await bad({ workflowId: 'heartbeat', cron: '0 9 * * *', timezone: 'Europe/Nowhere' }, /body\.timezone.*not an IANA time zone/);
    await bad({ workflowId: 'heartbeat', every: 'sometimes' }, /body\.every.*not a duration/);
    await bad({ workflowId: 'heartbeat', every: '1s', catchup: 'some' }, /body\.catchup/);
    const missing = await http(base, 'POST', '/schedules', { workflowId: 'nope', every: '1m' });
    expect(missing.status).toBe(404);
    expect(missing.json.code).toBe('WORKFLOW_NOT_FOUND');
    expect((await http(base, 'GET', '/schedules/unknown')).status).toBe(404);
    // The edge still serves.
    expect((await http(base, 'GET', '/schedules')).status).toBe(200);
  });

  it('fires once per second, never twice for one instant; pause stops it, resume restarts it', async () => {
    const r = await http(base, 'POST', '/schedules', { id: 'beat', workflowId: 'heartbeat', every: '1s', catchup: 'all', input: { from: 'schedule' } });
    expect(r.status, r.text).toBe(201);
    expect(r.headers.get('location')).toBe('/schedules/beat');
    expect(Date.parse(r.json.nextAt)).toBeGreaterThan(Date.now() - 1000);
    expect((await http(base, 'POST', '/schedules', { id: 'beat', workflowId: 'heartbeat', every: '1s' })).status).toBe(409);

    await sleep(4500);
    const paused = await http(base, 'POST', '/schedules/beat/pause');
    expect(paused.status).toBe(200);
    expect(paused.json).toMatchObject({ paused: true, nextAt: null });

    const fired = (await http(base, 'GET', '/schedules/beat')).json.history.filter((h: HistoryEntry) => h.kind === 'fired' || h.kind === 'caught-up').reverse() as HistoryEntry[];
    expect(fired.length).toBeGreaterThanOrEqual(3);
    expect(fired.length).toBeLessThanOrEqual(5);
    const instants = fired.map((h) => Date.parse(h.at));
    // Each instant claimed once (by one of the two schedulers), one second apart.
    expect(new Set(instants).size).toBe(instants.length);
    for (let i = 1; i < instants.length; i++) expect(instants[i] - instants[i - 1]).toBe(1000);

    // One execution per firing, each completed with the schedule's input, started by the schedule.
    await until('every firing to complete', async () => {
      const ex = await executionsOf('heartbeat');
      return ex.length === fired.length && ex.every((e) => e.status === 'COMPLETED');
    }, 15_000);
    expect((await executionsOf('heartbeat')).map((e) => e.executionId).sort()).toEqual(fired.map((h) => h.executionId).sort());
    const one = await waitForStatus(base, fired[0].executionId!, ['COMPLETED']);
    expect(one.steps.stamp.output).toEqual({ input: { from: 'schedule' } });
    const started = (await http(base, 'GET', `/executions/${fired[0].executionId}/events`)).json.events[0];
    expect(started.principal).toEqual({ tenant: 'default', keyId: 'schedule:beat' });

    // Paused: nothing more.
    await sleep(2200);
    expect((await executionsOf('heartbeat')).length).toBe(fired.length);

    // Resumed: the firings that fell while paused are not caught up; new ones start.
    const resumed = await http(base, 'POST', '/schedules/beat/resume');
    expect(resumed.json.paused).toBe(false);
    await until('a firing after the resume', async () => (await executionsOf('heartbeat')).length > fired.length, 5000);
    await http(base, 'POST', '/schedules/beat/pause');
    const after = (await http(base, 'GET', '/schedules/beat')).json.history as HistoryEntry[];
    expect(after.some((h) => h.kind === 'skipped' || h.kind === 'caught-up' && Date.parse(h.at) > instants[instants.length - 1] && Date.parse(h.at) < Date.parse(resumed.json.updatedAt))).toBe(false);
  }, 40_000);

  it('trigger starts one now (even paused); delete stops the schedule', async () => {
    const t = await http(base, 'POST', '/schedules/beat/trigger');
    expect(t.status, t.text).toBe(202);
    expect(t.json.executionId).toMatch(/^sched-beat-manual-/);
    await waitForStatus(base, t.json.executionId, ['COMPLETED']);
    const history = (await http(base, 'GET', '/schedules/beat')).json.history as HistoryEntry[];
    expect(history[0]).toMatchObject({ kind: 'triggered', executionId: t.json.executionId });

    const list = await http(base, 'GET', '/schedules');
    expect(list.json.schedules.map((s: { id: string }) => s.id)).toContain('beat');

    await http(base, 'POST', '/schedules/beat/resume');
    expect((await http(base, 'DELETE', '/schedules/beat')).status).toBe(204);
    expect((await http(base, 'GET', '/schedules/beat')).status).toBe(404);
    const count = (await executionsOf('heartbeat')).length;
    await sleep(2000);
    expect((await executionsOf('heartbeat')).length).toBeLessThanOrEqual(count + 1); // at most one claimed just before the delete
    const settled = (await executionsOf('heartbeat')).length;
    await sleep(1500);
    expect((await executionsOf('heartbeat')).length).toBe(settled);
  }, 30_000);
});
