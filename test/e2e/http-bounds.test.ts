/**
 * The bounds through the service as a client meets them (issue 9): the limits
 * come from the service's environment; a definition over the step limit is a
 * 422 naming the count and the limit; a retry storm ends FAILED with
 * HISTORY_LIMIT at the history limit and cannot be resumed past it (409); a
 * bad setting stops the service at start, naming the variable.
 */
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';
import { expectProblem, uniq } from './http-helpers.js';

const nats = useNatsServer();
const start = useService(nats);
// One service (its workers share one command consumer): 50 steps need 102 records, within 120.
const env = { SMARTSPEC_MAX_STEPS: '50', SMARTSPEC_HISTORY_LIMIT: '120' };
let service: Promise<{ url: string }> | undefined;
const the = () => (service ??= start({ env }));

describe('bounds over HTTP', () => {
  it('refuses a definition over SMARTSPEC_MAX_STEPS with a 422 naming the count and the limit', async () => {
    const { url } = await the();
    const steps = Array.from({ length: 51 }, (_, i) => ({ id: `s${i}`, type: 'transform', value: i }));
    const p = expectProblem(await http(url, 'POST', '/executions', { definition: { id: uniq('big'), steps } }), 422, 'INVALID_DEFINITION');
    expect(p.errors).toEqual([{ path: 'definition.steps', message: '51 steps is more than the limit of 50 per definition (SMARTSPEC_MAX_STEPS)' }]);
    // Exactly the limit runs.
    const ok = await http(url, 'POST', '/executions', { definition: { id: uniq('fits'), steps: steps.slice(0, 50) } });
    expect(ok.status).toBe(202);
    expect((await waitForStatus(url, ok.json.executionId, ['COMPLETED', 'FAILED'], 30_000)).status).toBe('COMPLETED');
  });

  it('a retry storm ends FAILED with HISTORY_LIMIT after SMARTSPEC_HISTORY_LIMIT records; resuming it is a 409', async () => {
    const { url } = await the();
    const definition = { id: uniq('storm'), steps: [{ id: 'flaky', type: 'fail', message: 'never', retryable: true, retry: { maxAttempts: 1_000_000, initialDelayMs: 0 } }] };
    const r = await http(url, 'POST', '/executions', { definition });
    expect(r.status).toBe(202);
    const ended = await waitForStatus(url, r.json.executionId, ['COMPLETED', 'FAILED'], 30_000);
    expect(ended.status).toBe('FAILED');
    expect(ended.error).toMatchObject({ code: 'HISTORY_LIMIT', retryable: false, details: { limit: 120 } });
    const events = await http(url, 'GET', `/executions/${r.json.executionId}/events`);
    expect(events.json.events).toHaveLength(120);

    const resume = await http(url, 'POST', `/executions/${r.json.executionId}/resume`, {});
    const p = expectProblem(resume, 409, 'HISTORY_LIMIT');
    expect(p.detail).toMatch(/has 120 records, at the limit of 120 \(SMARTSPEC_HISTORY_LIMIT\)/);
  });

  it('a bad setting stops the service at start, naming the variable', async () => {
    await expect(start({ env: { SMARTSPEC_RETENTION: 'soon' } })).rejects.toThrow(/SMARTSPEC_RETENTION: 'soon' is not a duration/);
  });
});
