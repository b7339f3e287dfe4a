import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';

const nats = useNatsServer();
const start = useService(nats);

describe('HTTP service smoke', () => {
  it('runs the fork-join example submitted over HTTP', async () => {
    const svc = await start();
    const definition = JSON.parse(readFileSync('examples/fork-join.json', 'utf8'));
    const r = await http(svc.url, 'POST', '/executions', { definition, input: { feature: 'search' } });
    expect(r.status).toBe(202);
    const done = await waitForStatus(svc.url, r.json.executionId, ['COMPLETED', 'FAILED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.steps.merge.output).toMatchObject({ security: { verdict: 'ok' }, legal: { ok: true } });
    expect(done.steps.merge.output).toHaveProperty('perf');

    // The fork and the join, as recorded: after draft, one parallel state with a region per branch;
    // merge starts only once all three branches completed.
    const events = (await http(svc.url, 'GET', `/executions/${r.json.executionId}/events`)).json.events as { type: string; stepId?: string; state: unknown }[];
    const at = (type: string, stepId: string) => events.findIndex((e) => e.type === type && e.stepId === stepId);
    expect(events[at('StepCompleted', 'draft')].state).toEqual({ running: { 'group(security,perf,legal)': { security: 'pending', perf: 'pending', legal: 'pending' } } });
    const branchesDone = Math.max(...['security', 'perf', 'legal'].map((id) => at('StepCompleted', id)));
    expect(at('StepStarted', 'merge')).toBeGreaterThan(branchesDone);
  });
});
