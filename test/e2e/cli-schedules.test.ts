/**
 * `smartspec schedules …` as a user runs it (a child process against this
 * file's nats-server), with a worker running the firings.
 */
import { describe, expect, it } from 'vitest';
import { connectNats } from '../../src/nats/connect.js';
import { WorkflowRegistry } from '../../src/registry/workflows.js';
import { def } from '../support/engine.js';
import { startCommand } from '../support/commands.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';
import { until } from './http-helpers.js';

const nats = useNatsServer();
const startService = useService(nats);

/** `smartspec schedules …` as a child process: the service in this process keeps running meanwhile. */
const cli = (...args: string[]) => startCommand(['schedules', ...args], { NATS_URL: nats.url }).result;

describe('smartspec schedules', () => {
  it('creates cron and interval schedules, shows their firings, triggers, pauses and deletes them', async () => {
    const nc = await connectNats(nats.url, 'cli-schedules-test');
    await (await WorkflowRegistry.open(nc)).register(def({ id: 'report', steps: [{ id: 'out', type: 'transform', value: { day: '{{input.day}}' } }] }));
    await nc.close();
    const svc = await startService();

    const [weekday, fast] = await Promise.all([
      cli('create', '--workflow', 'report', '--id', 'morning', '--cron', '0 9 * * 1-5', '--timezone', 'Europe/Paris', '--input', '{"day":"today"}', '--json'),
      cli('create', '--workflow', 'report', '--id', 'fast', '--every', '1s', '--input', '{"day":"now"}'),
    ]);
    expect(weekday.code, weekday.stderr).toBe(0);
    const created = JSON.parse(weekday.stdout);
    expect(created).toMatchObject({ id: 'morning', cron: '0 9 * * 1-5', timezone: 'Europe/Paris', catchup: 'none', paused: false });
    // 09:00 in Paris is 07:00 or 08:00 UTC, on a weekday.
    const next = new Date(created.nextAt);
    expect([7, 8]).toContain(next.getUTCHours());
    expect([1, 2, 3, 4, 5]).toContain(next.getUTCDay());

    expect(fast.code, fast.stderr).toBe(0);
    expect(fast.stdout).toMatch(/^fast\s+report\s+every 1s\s+catchup none\s+next \S+Z$/m);
    const firing = await until('a firing of fast', async () => (await http(svc.url, 'GET', '/schedules/fast')).json.history.find((h: { kind: string }) => h.kind === 'fired')?.executionId as string | undefined);
    expect((await waitForStatus(svc.url, firing, ['COMPLETED'])).steps.out.output).toEqual({ day: 'now' });

    const [paused, triggered] = await Promise.all([cli('pause', 'fast'), cli('trigger', 'morning')]);
    expect(paused.stdout).toMatch(/^fast .* paused$/m);
    expect(triggered.code, triggered.stderr).toBe(0);
    const manual = /started (sched-morning-manual-\S+)/.exec(triggered.stdout)![1];
    expect((await waitForStatus(svc.url, manual, ['COMPLETED'])).steps.out.output).toEqual({ day: 'today' });

    const [shown, removed] = await Promise.all([cli('show', 'morning'), cli('rm', 'fast')]);
    expect(shown.stdout).toMatch(/^morning\s+report\s+cron "0 9 \* \* 1-5" Europe\/Paris/m);
    expect(shown.stdout).toMatch(new RegExp(`triggered .*${manual}`));
    expect(removed.stdout).toContain('schedule fast deleted');
    expect((await http(svc.url, 'GET', '/schedules/fast')).status).toBe(404);
  }, 120_000);

  it('refuses bad input with a message naming it', async () => {
    const [bad, both] = await Promise.all([cli('create', '--workflow', 'report', '--cron', 'every day'), cli('create', '--workflow', 'report', '--every', '1s', '--timezone', 'UTC')]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/cron: cron 'every day' is not valid/);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/timezone: a timezone applies to cron only/);
  }, 60_000);
});
