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
    expect(done.steps.merge.output.legal).toEqual({ ok: true });
  });
});
