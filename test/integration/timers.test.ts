/**
 * Durable timers (issue 9, item 4), through the service in-process (edge +
 * worker over real HTTP, real nats-server): a passivated WAITING execution
 * reaches its signal timeout; a sleep's length may be a template or an ISO
 * time and may exceed 24 h; sleeping executions hold no worker slot; and every
 * history with the new record fields replays.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { LogRecord, StoredRecord } from '../../src/log/records.js';
import { replayExecution } from '../../src/log/replay.js';
import { useNatsServer } from '../support/nats.js';
import { REPO, until } from '../support/processes.js';
import { http, useService, waitForStatus } from '../support/service.js';
import { uniq, type EventView } from '../e2e/http-helpers.js';

const nats = useNatsServer();
const start = useService(nats);
let shared: string | undefined;
/** A low concurrency, so that a few sleepers would fill every slot if they held one. */
const CONCURRENCY = 8;
const service = async () => (shared ??= (await start({ env: { WORKER_CONCURRENCY: String(CONCURRENCY) } })).url);

async function submit(base: string, definition: unknown, input: unknown = {}): Promise<string> {
  const r = await http(base, 'POST', '/executions', { definition, input });
  expect(r.status, r.text).toBe(202);
  return r.json.executionId;
}

async function events(base: string, id: string): Promise<EventView[]> {
  const r = await http(base, 'GET', `/executions/${id}/events`);
  expect(r.status, r.text).toBe(200);
  return r.json.events;
}

const stored = (evs: EventView[]): StoredRecord[] => evs.map(({ seq, ...record }) => ({ seq, record: record as unknown as LogRecord }));
const ofStep = (evs: EventView[], type: string, stepId: string) => evs.filter((e) => e.type === type && e.stepId === stepId);

function expectReplays(id: string, evs: EventView[]) {
  const report = replayExecution(id, stored(evs));
  expect(report.chainBreaks).toEqual([]);
  expect(report.ok, JSON.stringify(report.events.filter((e) => !e.ok))).toBe(true);
}

describe('signal timeouts of passivated executions', () => {
  it('a WAITING execution the worker released still times out (regression: it stayed WAITING for good)', async () => {
    const base = await service();
    const id = await submit(base, { id: uniq('approve'), steps: [{ id: 'approve', type: 'signal', timeoutMs: 1500, retry: { maxAttempts: 1 } }] });
    const waiting = await waitForStatus(base, id, ['WAITING', 'FAILED', 'COMPLETED']);
    expect(waiting.status).toBe('WAITING');
    expect(typeof waiting.steps.approve.deadline).toBe('string');

    const done = await waitForStatus(base, id, ['FAILED', 'COMPLETED', 'CANCELLED'], 20_000);
    expect(done.status).toBe('FAILED');
    expect(done.steps.approve.error).toMatchObject({ code: 'TIMEOUT' });

    const evs = await events(base, id);
    const [started] = ofStep(evs, 'StepStarted', 'approve');
    expect(typeof started.deadline).toBe('string');
    // Counted from when the step started (the record is written a moment after the deadline is set).
    expect(Date.parse(started.deadline as string) - Date.parse(started.at)).toBeGreaterThan(1000);
    expect(Date.parse(started.deadline as string) - Date.parse(started.at)).toBeLessThanOrEqual(1500);
    const [failed] = ofStep(evs, 'StepFailed', 'approve');
    // Fired at the deadline (not before), saying how late.
    expect(Date.parse(failed.at)).toBeGreaterThanOrEqual(Date.parse(started.deadline as string));
    expect(typeof failed.lateMs).toBe('number');
    expectReplays(id, evs);
  });

  it('a signal that arrives before the deadline wins; the timer never fails the step afterwards', async () => {
    const base = await service();
    const id = await submit(base, { id: uniq('approve-in-time'), steps: [{ id: 'approve', type: 'signal', timeoutMs: 1500 }, { id: 'after', type: 'transform', value: '{{steps.approve.output}}' }] });
    expect((await waitForStatus(base, id, ['WAITING', 'FAILED', 'COMPLETED'])).status).toBe('WAITING');
    const r = await http(base, 'POST', `/executions/${id}/signals/approve`, { ok: true });
    expect(r.status, r.text).toBe(202);
    expect((await waitForStatus(base, id, ['COMPLETED', 'FAILED'])).status).toBe('COMPLETED');
    // Past the deadline: nothing more was written.
    const evs = await events(base, id);
    await new Promise((res) => setTimeout(res, 2500));
    expect((await events(base, id)).length).toBe(evs.length);
    expect(evs.some((e) => e.type === 'StepFailed')).toBe(false);
    expectReplays(id, evs);
  });
});

describe('sleep', () => {
  it('takes durationMs as a template, recording the resolved duration and its wake time', async () => {
    const base = await service();
    const id = await submit(base, { id: uniq('nap-template'), steps: [{ id: 'nap', type: 'sleep', durationMs: '{{input.ms}}' }] }, { ms: 700 });
    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED'], 20_000);
    expect(done.status, JSON.stringify(done)).toBe('COMPLETED');
    expect(done.steps.nap.output).toEqual({ sleptMs: 700 });
    const evs = await events(base, id);
    const [started] = ofStep(evs, 'StepStarted', 'nap');
    expect(started.durationMs).toBe(700);
    expect(Date.parse(started.wakeAt as string) - Date.parse(started.at)).toBeGreaterThan(200);
    expect(Date.parse(started.wakeAt as string) - Date.parse(started.at)).toBeLessThanOrEqual(700);
    const [completed] = ofStep(evs, 'StepCompleted', 'nap');
    expect(Date.parse(completed.at)).toBeGreaterThanOrEqual(Date.parse(started.wakeAt as string));
    expect(typeof completed.lateMs).toBe('number');
    expectReplays(id, evs);
  });

  it('a template that does not resolve to a duration fails the step, naming what it got', async () => {
    const base = await service();
    const id = await submit(base, { id: uniq('nap-bad'), steps: [{ id: 'nap', type: 'sleep', durationMs: '{{input.ms}}' }] }, { ms: 'soon' });
    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED'], 20_000);
    expect(done.status).toBe('FAILED');
    expect(done.error.code).toBe('INVALID_SLEEP');
    expect(done.error.message).toMatch(/durationMs.*"soon"/);
  });

  it('sleeps until an ISO time', async () => {
    const base = await service();
    const until = new Date(Date.now() + 1500).toISOString();
    const id = await submit(base, { id: uniq('nap-until'), steps: [{ id: 'nap', type: 'sleep', until: '{{input.until}}' }] }, { until });
    expect((await waitForStatus(base, id, ['WAITING', 'COMPLETED', 'FAILED'])).status).toBe('WAITING');
    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED'], 20_000);
    expect(done.status, JSON.stringify(done)).toBe('COMPLETED');
    const evs = await events(base, id);
    expect(ofStep(evs, 'StepStarted', 'nap')[0].wakeAt).toBe(until);
    expect(Date.parse(ofStep(evs, 'StepCompleted', 'nap')[0].at)).toBeGreaterThanOrEqual(Date.parse(until));
    expectReplays(id, evs);
  });

  it('accepts a sleep longer than 24 h; the sleeper waits (WAITING) and can be cancelled', async () => {
    const base = await service();
    const threeDays = 3 * 86_400_000;
    const id = await submit(base, { id: uniq('nap-long'), steps: [{ id: 'nap', type: 'sleep', durationMs: threeDays }] });
    const w = await waitForStatus(base, id, ['WAITING', 'FAILED']);
    expect(w.status).toBe('WAITING');
    expect(w.steps.nap.phase).toBe('waiting');
    expect(Date.parse(w.steps.nap.wakeAt)).toBeGreaterThan(Date.now() + threeDays - 60_000);
    const evs = await events(base, id);
    expect(Date.parse(ofStep(evs, 'StepStarted', 'nap')[0].wakeAt as string) - Date.now()).toBeGreaterThan(threeDays - 60_000);
    expect((await http(base, 'POST', `/executions/${id}/cancel`)).status).toBe(202);
    expect((await waitForStatus(base, id, ['CANCELLED'])).status).toBe('CANCELLED');
    expectReplays(id, await events(base, id));
  });

  it('sleeping executions hold no worker slot: with more sleepers than slots, a 1-step execution still completes', async () => {
    const base = await service();
    const sleepers: string[] = [];
    const wf = uniq('sleeper');
    for (let i = 0; i < CONCURRENCY * 5; i++) sleepers.push(await submit(base, { id: wf, steps: [{ id: 'nap', type: 'sleep', durationMs: 600_000 }] }));
    await until('every sleeper to wait', async () => {
      const r = await http(base, 'GET', `/executions?workflowId=${wf}&status=WAITING&limit=1000`);
      return r.json.executions?.length === sleepers.length;
    }, 60_000);

    const quick = await submit(base, { id: uniq('quick'), steps: [{ id: 'only', type: 'transform', value: 1 }] });
    const done = await waitForStatus(base, quick, ['COMPLETED', 'FAILED'], 20_000);
    expect(done.status).toBe('COMPLETED');
    // The sleepers are still asleep: the quick one did not just get a slot they had given back by waking.
    for (const id of sleepers.slice(0, 5)) expect((await http(base, 'GET', `/executions/${id}`)).json.status).toBe('WAITING');
  }, 120_000);

  it('a sleep beside a step still running (the worker hosts the execution) ends once, though the host and the timer bucket both fire it', async () => {
    const base = await service();
    const id = await submit(base, {
      id: uniq('nap-beside'),
      steps: [
        { id: 'nap', type: 'sleep', durationMs: 1500 },
        // Waits out a 3 s retry delay: the execution stays RUNNING, hosted, meanwhile.
        { id: 'flaky', type: 'fail', retryable: true, onError: 'continue', retry: { maxAttempts: 2, initialDelayMs: 3000 } },
      ],
      parallel: [['nap', 'flaky']],
    });
    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED'], 20_000);
    expect(done.status, JSON.stringify(done)).toBe('COMPLETED');
    expect(done.steps.nap.output).toEqual({ sleptMs: 1500 });
    const evs = await events(base, id);
    expect(ofStep(evs, 'StepCompleted', 'nap')).toHaveLength(1);
    expect(evs.filter((e) => e.type === 'ExecutionResumed')).toEqual([]);
    expectReplays(id, evs);
  });

  it('`smartspec replay` verifies a history with wakeAt, durationMs and lateMs', async () => {
    const base = await service();
    const id = await submit(base, { id: uniq('nap-replay'), steps: [{ id: 'nap', type: 'sleep', durationMs: 200 }, { id: 'wait', type: 'signal', timeoutMs: 300, onError: 'continue', retry: { maxAttempts: 1 } }] });
    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED'], 20_000);
    expect(done.status).toBe('COMPLETED');
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/smartspec.mjs', 'replay', id], { cwd: REPO, env: { ...process.env, NATS_URL: nats.url } });
    expect(stdout).toMatch(/replay verified \d+ events/);
  });
});
