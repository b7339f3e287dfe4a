/**
 * Resume and cancel over HTTP (real HTTP, real nats-server, a real worker):
 * resuming a failed execution with corrected steps without re-running what
 * completed, every refusal with its status and reason, and cancelling an
 * execution whose `http` step is in flight against a real server, which must
 * see its request aborted.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';
import { count, events, expectProblem, uniq, waitForEvent } from './http-helpers.js';

const nats = useNatsServer();
const start = useService(nats);
let base = '';

/**
 * Counts requests by path; a path in `brokenPaths` answers 500 after 300 ms
 * (so the other branch of its group has completed by then), any other 200.
 */
const hits = new Map<string, number>();
const brokenPaths = new Set<string>();
const hitCount = (path: string) => hits.get(path) ?? 0;
let hitServer: Server;
let hitsUrl = '';

beforeAll(async () => {
  base = (await start()).url;
  hitServer = createServer((req, res) => {
    const path = req.url ?? '';
    hits.set(path, hitCount(path) + 1);
    if (brokenPaths.has(path)) setTimeout(() => res.writeHead(500).end('broken'), 300);
    else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path }));
  });
  await new Promise<void>((r) => hitServer.listen(0, '127.0.0.1', r));
  hitsUrl = `http://127.0.0.1:${(hitServer.address() as AddressInfo).port}`;
});
afterAll(async () => {
  hitServer.closeAllConnections();
  await new Promise((r) => hitServer.close(r));
});

/** prepare → check (fails) → publish; `publish` uses both outputs. */
function failing(id: string) {
  return {
    id,
    steps: [
      { id: 'prepare', type: 'transform', value: { n: '{{input.n}}' } },
      { id: 'check', type: 'fail', message: 'check is broken' },
      { id: 'publish', type: 'transform', value: { prepared: '{{steps.prepare.output}}', checked: '{{steps.check.output}}' } },
    ],
  };
}

async function failedExecution(): Promise<{ id: string; wf: string }> {
  const wf = uniq('resume');
  const r = await http(base, 'POST', '/executions', { definition: failing(wf), input: { n: 7 } });
  expect(r.status).toBe(202);
  const id: string = r.json.executionId;
  const failed = await waitForStatus(base, id, ['FAILED', 'COMPLETED']);
  expect(failed.status).toBe('FAILED');
  expect(failed.error).toMatchObject({ code: 'STEP_FAILED', message: 'check is broken' });
  expect(failed.steps.check).toMatchObject({ phase: 'failed', error: { code: 'STEP_FAILED' } });
  expect(failed.steps.publish.phase).toBe('pending');
  return { id, wf };
}

describe('resume over HTTP', () => {
  it('a failed execution, from the failed step with corrected steps: COMPLETED, completed steps not re-run', async () => {
    const { id, wf } = await failedExecution();
    const corrected = {
      steps: [
        { id: 'prepare', type: 'transform', value: { n: '{{input.n}}' } },
        { id: 'check', type: 'transform', value: { passed: true } },
        { id: 'publish', type: 'transform', value: { prepared: '{{steps.prepare.output}}', checked: '{{steps.check.output}}' } },
      ],
    };
    const r = await http(base, 'POST', `/executions/${id}/resume`, { fromStep: 'check', steps: corrected });
    expect(r.status, r.text).toBe(202);
    expect(r.json).toMatchObject({ executionId: id });
    // The 202 is answered before a worker takes the command: wait for its record, then the end.
    await waitForEvent(base, id, (e) => e.type === 'ExecutionResumed', 'the resume to be recorded');
    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.workflowId).toBe(wf);
    expect(done.steps.check.output).toEqual({ passed: true });
    expect(done.steps.publish.output).toEqual({ prepared: { n: 7 }, checked: { passed: true } });
    expect(done.error).toBeUndefined();

    const evs = await events(base, id);
    expect(count(evs, 'StepStarted', 'prepare')).toBe(1); // not re-run
    expect(count(evs, 'StepCompleted', 'prepare')).toBe(1);
    expect(count(evs, 'StepStarted', 'check')).toBe(2); // failed once, then the corrected one
    expect(count(evs, 'StepStarted', 'publish')).toBe(1);
    expect(evs.map((e) => e.type).filter((t) => t.startsWith('Execution'))).toEqual(['ExecutionStarted', 'ExecutionFailed', 'ExecutionResumed', 'ExecutionCompleted']);
    const resumed = evs.find((e) => e.type === 'ExecutionResumed')!;
    expect(resumed).toMatchObject({ fromStep: 'check', reason: 'resume' });
    expect((resumed.definition as { steps: { id: string; type: string }[] }).steps[1]).toMatchObject({ id: 'check', type: 'transform' });
    for (let i = 1; i < evs.length; i++) expect(evs[i].seq).toBeGreaterThan(evs[i - 1].seq);

    // Now it is COMPLETED: another resume is refused, saying why.
    const again = await http(base, 'POST', `/executions/${id}/resume`, {});
    const p = expectProblem(again, 409, 'INVALID_EXECUTION_STATE');
    expect(p.detail).toMatch(/is COMPLETED: there is nothing to resume/);
    expect(count(await events(base, id), 'ExecutionResumed')).toBe(1);
  });

  it('a corrected step that still fails: FAILED again, with the new error', async () => {
    const { id } = await failedExecution();
    const stillBroken = {
      steps: [
        { id: 'prepare', type: 'transform', value: { n: '{{input.n}}' } },
        { id: 'check', type: 'fail', message: 'check is still broken after the fix' },
        { id: 'publish', type: 'transform', value: { prepared: '{{steps.prepare.output}}' } },
      ],
    };
    const r = await http(base, 'POST', `/executions/${id}/resume`, { fromStep: 'check', steps: stillBroken });
    expect(r.status, r.text).toBe(202);
    const resumedSeq = (await waitForEvent(base, id, (e) => e.type === 'ExecutionResumed', 'the resume to be recorded')).seq;
    // A status poll could still see the first failure: wait for the resumed run's end instead.
    await waitForEvent(base, id, (e) => e.type.startsWith('Execution') && e.type !== 'ExecutionResumed' && e.seq > resumedSeq, 'the resumed run to end');
    const failed = await http(base, 'GET', `/executions/${id}`);
    expect(failed.json.status).toBe('FAILED');
    expect(failed.json.error).toMatchObject({ code: 'STEP_FAILED', message: 'check is still broken after the fix' });
    expect(failed.json.steps.check).toMatchObject({ phase: 'failed', error: { message: 'check is still broken after the fix' } });
    expect(failed.json.steps.publish.phase).toBe('pending');

    const evs = await events(base, id);
    expect(evs.map((e) => e.type).filter((t) => t.startsWith('Execution'))).toEqual(['ExecutionStarted', 'ExecutionFailed', 'ExecutionResumed', 'ExecutionFailed']);
    expect(evs.filter((e) => e.type === 'ExecutionFailed').map((e) => e.error?.message)).toEqual(['check is broken', 'check is still broken after the fix']);
    expect(count(evs, 'StepStarted', 'prepare')).toBe(1);
    expect(count(evs, 'StepStarted', 'publish')).toBe(0);
  });

  it('from a checkpoint in the middle of a parallel group: the branch that had completed does not start again', async () => {
    const wf = uniq('mid-group');
    const tag = wf;
    brokenPaths.add(`/${tag}/typecheck`);
    const call = (id: string) => ({ id, type: 'http', request: { url: `${hitsUrl}/${tag}/${id}` }, retry: { maxAttempts: 1 } });
    const r = await http(base, 'POST', '/executions', {
      definition: { id: wf, steps: [call('build'), call('lint'), call('typecheck'), call('tests')], parallel: [['lint', 'typecheck']] },
    });
    expect(r.status, r.text).toBe(202);
    const id: string = r.json.executionId;
    const failed = await waitForStatus(base, id, ['FAILED', 'COMPLETED']);
    expect(failed.status).toBe('FAILED');
    expect(failed.error.code).toBe('HTTP_500');

    const cps = await http(base, 'GET', `/executions/${id}/checkpoints`);
    expect(cps.status, cps.text).toBe(200);
    const checkpoints = cps.json.checkpoints as { id: string; seq: number; type: string; stepId?: string; state: unknown }[];
    expect(checkpoints.map((c) => [c.type, c.stepId])).toEqual([['ExecutionStarted', undefined], ['StepCompleted', 'build'], ['StepCompleted', 'lint']]);
    const inGroup = checkpoints.find((c) => c.stepId === 'lint')!;
    expect(inGroup.state).toEqual({ running: { 'group(lint,typecheck)': { lint: 'done', typecheck: 'running' } } });

    brokenPaths.delete(`/${tag}/typecheck`);
    const res = await http(base, 'POST', `/executions/${id}/resume`, { checkpointId: inGroup.id });
    expect(res.status, res.text).toBe(202);
    await waitForEvent(base, id, (e) => e.type === 'ExecutionResumed', 'the resume to be recorded');
    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED', 'CANCELLED']);
    expect(done.status).toBe('COMPLETED');

    const evs = await events(base, id);
    const resumedAt = evs.findIndex((e) => e.type === 'ExecutionResumed');
    expect(evs[resumedAt]).toMatchObject({ checkpointSeq: inGroup.seq, reason: 'resume' });
    const after = evs.slice(resumedAt);
    expect(count(after, 'StepStarted', 'lint')).toBe(0);
    expect(count(after, 'StepStarted', 'build')).toBe(0);
    expect(count(after, 'StepStarted', 'typecheck')).toBe(1);
    expect(count(after, 'StepStarted', 'tests')).toBe(1);
    expect(hitCount(`/${tag}/lint`)).toBe(1);
    expect(hitCount(`/${tag}/build`)).toBe(1);
    expect(hitCount(`/${tag}/typecheck`)).toBe(2);
  });

  it('refuses an unknown checkpoint (404), a step not in the workflow (404), replacement with no steps (422)', async () => {
    const { id } = await failedExecution();
    const before = (await events(base, id)).length;

    const cp = expectProblem(await http(base, 'POST', `/executions/${id}/resume`, { checkpointId: 'cp-999999' }), 404, 'CHECKPOINT_NOT_FOUND');
    expect(cp.detail).toBe(`checkpoint 'cp-999999' not found in execution '${id}'`);
    expect(cp.instance).toBe(`/executions/${id}/resume`);

    const step = expectProblem(await http(base, 'POST', `/executions/${id}/resume`, { fromStep: 'no-such-step' }), 404, 'STEP_NOT_FOUND');
    expect(step.detail).toMatch(/step 'no-such-step' is not in workflow/);

    const none = expectProblem(await http(base, 'POST', `/executions/${id}/resume`, { fromStep: 'check', steps: { steps: [] } }), 422, 'NO_STEPS');
    expect(none.detail).toMatch(/no steps/);

    const both = expectProblem(await http(base, 'POST', `/executions/${id}/resume`, { checkpointId: 'cp-1', fromStep: 'check' }), 400, 'INVALID_INPUT');
    expect(both.detail).toMatch(/either a checkpoint or a step/);

    // Replacement steps that are not a valid definition name the path.
    const bad = expectProblem(
      await http(base, 'POST', `/executions/${id}/resume`, { fromStep: 'check', steps: { steps: [{ id: 'prepare', type: 'transform', value: 1 }, { id: 'check', type: 'teleport' }] } }),
      422,
      'INVALID_DEFINITION',
    );
    expect(bad.errors?.[0].path).toBe('steps[1].type');

    // Nothing was written by any refusal, and the execution can still be resumed.
    const after = await events(base, id);
    expect(after.length).toBe(before);
    expect(after[after.length - 1].type).toBe('ExecutionFailed');
  });

  it('resume of an execution that is RUNNING on a live worker is refused with 409', async () => {
    const wf = uniq('running');
    // Waiting out a 60 s retry delay, the execution is RUNNING and stays hosted (a sleep would be passivated as WAITING).
    const r = await http(base, 'POST', '/executions', { definition: { id: wf, steps: [{ id: 'nap', type: 'fail', retryable: true, retry: { maxAttempts: 2, initialDelayMs: 60_000 } }] } });
    const id: string = r.json.executionId;
    await waitForEvent(base, id, (e) => e.type === 'StepFailed' && e.stepId === 'nap', 'the first attempt to fail');
    expect((await http(base, 'GET', `/executions/${id}`)).json.status).toBe('RUNNING');

    const refused = await http(base, 'POST', `/executions/${id}/resume`, {});
    expect(refused.status).toBe(409);
    const p = expectProblem(refused, 409, refused.json.code);
    expect(['EXECUTION_OWNED', 'INVALID_EXECUTION_STATE']).toContain(p.code);
    expect(p.detail).toMatch(new RegExp(`execution '${id}'`));
    expect(count(await events(base, id), 'ExecutionResumed')).toBe(0);

    // Clean up: cancelling stops the retry delay at once.
    expect((await http(base, 'POST', `/executions/${id}/cancel`)).status).toBe(202);
    expect((await waitForStatus(base, id, ['CANCELLED'], 3000)).status).toBe('CANCELLED');
  });

  it('a resume of an unknown execution is a 404', async () => {
    const p = expectProblem(await http(base, 'POST', '/executions/no-such-execution/resume', {}), 404, 'EXECUTION_NOT_FOUND');
    expect(p.detail).toBe("execution 'no-such-execution' not found");
  });
});

describe('cancel over HTTP', () => {
  /** A server that never answers /hold: it records each request and whether its socket closed. */
  const held: { req: IncomingMessage; closed: Promise<number> }[] = [];
  let server: Server;
  let serverUrl = '';
  let arrived: (() => void) | undefined;
  beforeAll(async () => {
    server = createServer((req) => {
      const closed = new Promise<number>((resolve) => req.socket.once('close', () => resolve(Date.now())));
      held.push({ req, closed });
      arrived?.();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('cancels an execution whose http step is in flight: CANCELLED at once, the request aborted', async () => {
    const wf = uniq('cancel');
    const requestArrived = new Promise<void>((r) => (arrived = r));
    const r = await http(base, 'POST', '/executions', {
      definition: {
        id: wf,
        steps: [
          { id: 'call', type: 'http', request: { method: 'POST', url: `${serverUrl}/hold`, body: { q: 1 } } },
          { id: 'after', type: 'transform', value: 'never' },
        ],
      },
    });
    const id: string = r.json.executionId;
    await requestArrived;
    const inflight = held[held.length - 1];
    expect(inflight.req.url).toBe('/hold');
    expect(inflight.req.method).toBe('POST');
    expect((await http(base, 'GET', `/executions/${id}`)).json).toMatchObject({ status: 'RUNNING', steps: { call: { phase: 'running' } } });

    const t0 = Date.now();
    const c = await http(base, 'POST', `/executions/${id}/cancel`, { reason: 'the user changed their mind' });
    expect(c.status, c.text).toBe(202);
    expect(c.json).toMatchObject({ executionId: id });

    const cancelled = await waitForStatus(base, id, ['CANCELLED', 'FAILED', 'COMPLETED'], 3000);
    expect(cancelled.status).toBe('CANCELLED');
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(cancelled.endedAt).toBeDefined();
    expect(cancelled.steps.after.phase).not.toBe('done');

    // The test server saw its in-flight request's connection closed.
    const closedAt = await Promise.race([inflight.closed, new Promise<null>((r) => setTimeout(() => r(null), 3000))]);
    expect(closedAt, 'the held request was not aborted').not.toBeNull();
    expect(closedAt! - t0).toBeLessThan(2000);

    const evs = await events(base, id);
    const end = evs[evs.length - 1];
    expect(end.type).toBe('ExecutionCancelled');
    expect(end.reason).toBe('the user changed their mind');
    expect(count(evs, 'StepCompleted', 'call')).toBe(0);
    expect(count(evs, 'StepStarted', 'after')).toBe(0);
    expect(count(evs, 'ExecutionCancelled')).toBe(1);

    // Cancelling again is refused, and writes nothing.
    const again = expectProblem(await http(base, 'POST', `/executions/${id}/cancel`), 409, 'INVALID_EXECUTION_STATE');
    expect(again.detail).toBe(`execution '${id}' is CANCELLED and cannot be cancelled`);
    expect((await events(base, id)).length).toBe(evs.length);
    // Nothing calls the server again (no retry of the aborted step).
    expect(held.filter((h) => h.req.url === '/hold')).toHaveLength(1);
  });

  it('a cancelled execution can be resumed from its last checkpoint and completes', async () => {
    const wf = uniq('cancel-resume');
    const r = await http(base, 'POST', '/executions', {
      definition: { id: wf, steps: [{ id: 'first', type: 'transform', value: 1 }, { id: 'nap', type: 'sleep', durationMs: 60_000 }, { id: 'last', type: 'transform', value: 3 }] },
    });
    const id: string = r.json.executionId;
    await waitForEvent(base, id, (e) => e.type === 'StepStarted' && e.stepId === 'nap', 'the sleep step to start');
    expect((await http(base, 'POST', `/executions/${id}/cancel`)).status).toBe(202);
    await waitForStatus(base, id, ['CANCELLED'], 3000);

    const res = await http(base, 'POST', `/executions/${id}/resume`, {
      steps: { steps: [{ id: 'first', type: 'transform', value: 1 }, { id: 'nap', type: 'sleep', durationMs: 1 }, { id: 'last', type: 'transform', value: 3 }] },
    });
    expect(res.status, res.text).toBe(202);
    await waitForEvent(base, id, (e) => e.type === 'ExecutionResumed', 'the resume to be recorded');
    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED', 'CANCELLED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.steps.last.output).toBe(3);
    const evs = await events(base, id);
    expect(count(evs, 'StepStarted', 'first')).toBe(1);
    expect(count(evs, 'StepStarted', 'nap')).toBe(2);
  });

  it('cancel of a COMPLETED or unknown execution is refused', async () => {
    const wf = uniq('cancel-done');
    const id = (await http(base, 'POST', '/executions', { definition: { id: wf, steps: [{ id: 'a', type: 'transform', value: 1 }] } })).json.executionId;
    await waitForStatus(base, id, ['COMPLETED']);
    const p = expectProblem(await http(base, 'POST', `/executions/${id}/cancel`), 409, 'INVALID_EXECUTION_STATE');
    expect(p.detail).toBe(`execution '${id}' is COMPLETED and cannot be cancelled`);
    expect(count(await events(base, id), 'ExecutionCancelled')).toBe(0);
    expectProblem(await http(base, 'POST', '/executions/no-such-execution/cancel'), 404, 'EXECUTION_NOT_FOUND');
  });
});
