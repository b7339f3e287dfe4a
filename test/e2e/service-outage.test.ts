/**
 * A submission while NATS is down (issue 15): the edge answers 503
 * problem+json with Retry-After, never a 500; once the nats-server is back on
 * the same port and store, the same Idempotency-Key gets a 202 and starts
 * exactly one execution (one ExecutionStarted in its log, one listing entry).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../src/cli/service.js';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';
import { http, waitForStatus } from '../support/service.js';
import { until } from '../support/processes.js';
import { count, events, expectProblem, uniq } from './http-helpers.js';

let storeDir: string;
let port: number;
let nats: NatsServer | undefined;
let svc: RunningService & { url: string };

/** GET with a client-side bound, so a hanging request fails the poll instead of the test. */
async function status(url: string): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

beforeAll(async () => {
  storeDir = await mkdtemp(join(tmpdir(), 'smartspec-outage-'));
  nats = await startNatsServer({ storeDir });
  port = nats.port;
  svc = (await startService(
    { edge: true, worker: true },
    { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'silent', RATE_LIMIT_MAX: '100000', ACK_WAIT_MS: '2000', NATS_URL: nats.url },
  )) as RunningService & { url: string };
}, 30_000);

afterAll(async () => {
  // NATS must be up for a clean stop; if the test left it down, bring it back first.
  if (!nats && storeDir) nats = await startNatsServer({ storeDir, port }).catch(() => undefined);
  await Promise.race([svc?.stop(), new Promise((r) => setTimeout(r, 10_000))]).catch(() => undefined);
  await nats?.stop();
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
}, 30_000);

describe('a submission during a NATS outage', () => {
  it('is a 503 problem+json (never a 500); the same Idempotency-Key after NATS returns starts exactly one execution', async () => {
    const workflowId = uniq('outage');
    const submission = { definition: { id: workflowId, steps: [{ id: 'a', type: 'transform', value: '{{input.n}}' }] }, input: { n: 7 } };
    const key = `outage-key-${workflowId}`;
    expect(await status(`${svc.url}/readyz`)).toBe(200);

    await nats!.stop();
    nats = undefined;
    await until('/readyz to answer 503 while NATS is down', async () => (await status(`${svc.url}/readyz`)) === 503, 15_000);

    const refused = await http(svc.url, 'POST', '/executions', submission, { 'Idempotency-Key': key });
    const p = expectProblem(refused, 503, 'SERVICE_UNAVAILABLE');
    expect(p.detail).toBe('the message system is unavailable right now; retry shortly');
    expect(refused.headers.get('retry-after')).toBe('2');

    nats = await startNatsServer({ storeDir, port });
    expect(nats.port).toBe(port);
    await until('/readyz to answer 200 once NATS is back', async () => (await status(`${svc.url}/readyz`)) === 200, 20_000, 100);

    const accepted = await http(svc.url, 'POST', '/executions', submission, { 'Idempotency-Key': key });
    expect(accepted.status, accepted.text).toBe(202);
    const id = accepted.json.executionId as string;
    const done = await waitForStatus(svc.url, id, ['COMPLETED', 'FAILED', 'CANCELLED'], 20_000);
    expect(done.status).toBe('COMPLETED');
    expect(done.output ?? done.steps.a.output).toBe(7);

    // The key is now bound to that execution: a repeat starts nothing new.
    const repeat = await http(svc.url, 'POST', '/executions', submission, { 'Idempotency-Key': key });
    expect(repeat.status, repeat.text).toBe(202);
    expect(repeat.json.executionId).toBe(id);
    expect(repeat.headers.get('idempotent-replayed')).toBe('true');

    expect(count(await events(svc.url, id), 'ExecutionStarted')).toBe(1);
    const listed = await until('the listing to show the execution', async () => {
      const r = await http(svc.url, 'GET', `/executions?workflowId=${workflowId}`);
      return r.status === 200 && r.json.executions.length > 0 && r.json.executions;
    });
    expect(listed.map((e: { executionId: string }) => e.executionId)).toEqual([id]);
  }, 90_000);
});
