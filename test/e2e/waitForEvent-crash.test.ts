/**
 * waitForEvent's deadline is durable: the worker that started the wait is
 * SIGKILLed, and another worker fails the step with EVENT_TIMEOUT on time.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { killAll, killChild, spawnCli } from '../support/processes.js';
import { http, useService, waitForStatus } from '../support/service.js';

const nats = useNatsServer();
const startService = useService(nats);
afterAll(killAll);

describe('waitForEvent and a SIGKILLed worker', () => {
  it('the timeout fires on another worker', async () => {
    const env = { NATS_URL: nats.url, ACK_WAIT_MS: '2000', LOG_LEVEL: 'info', SMARTSPEC_EVENTS_SUBJECTS: 'payments.>' };
    const first = spawnCli('w1', 'worker', env);
    await first.waitForOutput(/worker consuming commands/, 60_000);
    const { url } = await startService({ worker: false, env: { ...env, LOG_LEVEL: 'silent' } });
    const definition = { id: 'pay', steps: [{ id: 'paid', type: 'waitForEvent', subject: 'payments.settled', timeoutMs: 8000 }] };
    const r = await http(url, 'POST', '/executions', { definition, input: {} });
    expect(r.status).toBe(202);
    const id = r.json.executionId as string;
    const waiting = await waitForStatus(url, id, ['WAITING'], 30_000);
    const deadline = Date.parse(waiting.steps.paid.deadline);
    await killChild(first);
    const second = spawnCli('w2', 'worker', env);
    await second.waitForOutput(/worker consuming commands/, 60_000);
    const failed = await waitForStatus(url, id, ['FAILED', 'COMPLETED'], 60_000);
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toMatchObject({ code: 'EVENT_TIMEOUT' });
    const events = (await http(url, 'GET', `/executions/${id}/events`)).json.events as { type: string; at: string }[];
    const stepFailed = events.find((e) => e.type === 'StepFailed')!;
    expect(Date.parse(stepFailed.at)).toBeGreaterThanOrEqual(deadline);
  }, 150_000);
});
