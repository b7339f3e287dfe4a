/**
 * The HTTP API end to end (real HTTP, real nats-server, a real worker in the
 * same process): submitting fork-join workflows inline and from the registry,
 * reading executions, their events and checkpoints, listings, the workflow
 * registry, idempotent submission, and the ops endpoints.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { EXECUTION_INDEX_BUCKET } from '../../src/nats/names.js';
import { count, events, expectProblem, expectSecurityHeaders, forkJoin, uniq, until } from './http-helpers.js';

const nats = useNatsServer();
const start = useService(nats);
let base = '';
beforeAll(async () => {
  base = (await start()).url;
});

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

describe('a fork-join execution over HTTP', () => {
  it('submitted inline: runs to COMPLETED, and its summary, events and checkpoints read back', async () => {
    const wf = uniq('fj-inline');
    const submit = await http(base, 'POST', '/executions', { definition: forkJoin(wf), input: { feature: 'search' } });
    expect(submit.status).toBe(202);
    expect(submit.json).toMatchObject({ status: 'PENDING', workflowId: wf });
    const id: string = submit.json.executionId;
    expect(id).toMatch(/^[A-Za-z0-9_-]{1,128}$/);
    expect(submit.headers.get('location')).toBe(`/executions/${id}`);
    expectSecurityHeaders(submit);

    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED', 'CANCELLED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.executionId).toBe(id);
    expect(done.workflowId).toBe(wf);
    expect(done.state).toBe('completed');
    for (const s of ['draft', 'security', 'perf', 'legal', 'merge']) expect(done.steps[s].phase, s).toBe('done');
    expect(done.steps.draft.output).toEqual({ text: 'Spec for search' });
    expect(done.steps.security.output).toEqual({ verdict: 'ok', notes: 'reviewed: Spec for search' });
    expect(done.steps.perf.output).toEqual({ sleptMs: 30 });
    expect(done.steps.merge.output).toEqual({ security: { verdict: 'ok', notes: 'reviewed: Spec for search' }, perf: { sleptMs: 30 }, legal: { ok: true } });
    expect(done.startedAt).toMatch(ISO);
    expect(done.endedAt).toMatch(ISO);
    expect(done.updatedAt).toBe(done.endedAt);
    expect(Date.parse(done.endedAt)).toBeGreaterThanOrEqual(Date.parse(done.startedAt));
    expect(done.error).toBeUndefined();

    // The log: ordered, one start, every step started and completed once, one end, hash on each.
    const evs = await events(base, id);
    expect(evs.length).toBe(done.events);
    expect(evs[evs.length - 1].seq).toBe(done.lastSeq);
    for (let i = 1; i < evs.length; i++) expect(evs[i].seq).toBeGreaterThan(evs[i - 1].seq);
    expect(evs[0].type).toBe('ExecutionStarted');
    expect(evs[0]).toMatchObject({ executionId: id, workflowId: wf, input: { feature: 'search' } });
    expect((evs[0].definition as { id: string }).id).toBe(wf);
    expect(evs[evs.length - 1].type).toBe('ExecutionCompleted');
    for (const e of evs) {
      expect(e.hash).toMatch(/^[0-9a-f]{64}$/);
      expect(e.at).toMatch(ISO);
      expect(e.executionId).toBe(id);
    }
    expect(new Set(evs.map((e) => e.hash)).size).toBe(evs.length);
    for (const s of ['draft', 'security', 'perf', 'legal', 'merge']) {
      expect(count(evs, 'StepStarted', s), s).toBe(1);
      expect(count(evs, 'StepCompleted', s), s).toBe(1);
    }
    expect(evs.map((e) => e.type).filter((t) => t.startsWith('Execution'))).toEqual(['ExecutionStarted', 'ExecutionCompleted']);
    // Fork-join order: draft completes before any branch starts; merge starts after every branch completed.
    const at = (type: string, step: string) => evs.findIndex((e) => e.type === type && e.stepId === step);
    for (const b of ['security', 'perf', 'legal']) {
      expect(at('StepStarted', b)).toBeGreaterThan(at('StepCompleted', 'draft'));
      expect(at('StepStarted', 'merge')).toBeGreaterThan(at('StepCompleted', b));
    }

    // ?from=seq: the tail from that sequence on, inclusive.
    const mid = evs[3].seq;
    const tail = await events(base, id, mid);
    expect(tail.map((e) => e.seq)).toEqual(evs.slice(3).map((e) => e.seq));
    expect(tail).toEqual(evs.slice(3));
    expect(await events(base, id, done.lastSeq + 1)).toEqual([]);

    // Checkpoints: the start and every step completion, named cp-<seq>.
    const cps = await http(base, 'GET', `/executions/${id}/checkpoints`);
    expect(cps.status).toBe(200);
    expect(cps.json.executionId).toBe(id);
    const list = cps.json.checkpoints as { id: string; seq: number; type: string; stepId?: string; at: string }[];
    expect(list.map((c) => c.type)).toEqual(['ExecutionStarted', ...Array(5).fill('StepCompleted')]);
    expect(list[0].stepId).toBeUndefined();
    expect(list.slice(1).map((c) => c.stepId).sort()).toEqual(['draft', 'legal', 'merge', 'perf', 'security']);
    for (const c of list) {
      expect(c.id).toBe(`cp-${c.seq}`);
      expect(evs.find((e) => e.seq === c.seq)?.type).toBe(c.type);
    }
    expect(list.map((c) => c.seq)).toEqual(evs.filter((e) => e.type === 'ExecutionStarted' || e.type === 'StepCompleted').map((e) => e.seq));
  });

  it('submitted by workflowId after POST /workflows: runs the registered definition and is listed by status and workflow', async () => {
    const wf = uniq('fj-registered');
    const reg = await http(base, 'POST', '/workflows', forkJoin(wf));
    expect(reg.status).toBe(201);
    const submit = await http(base, 'POST', '/executions', { workflowId: wf, input: { feature: 'export' } });
    expect(submit.status).toBe(202);
    expect(submit.json.workflowId).toBe(wf);
    const id: string = submit.json.executionId;
    const other = (await http(base, 'POST', '/executions', { definition: forkJoin(uniq('fj-other')), input: { feature: 'x' } })).json.executionId as string;

    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.steps.draft.output).toEqual({ text: 'Spec for export' });
    const started = (await events(base, id))[0];
    expect((started.definition as { version?: number }).version).toBe(1);

    // The index is updated after the log, asynchronously: poll the listing.
    const listed = await until('the execution listed as COMPLETED', async () => {
      const r = await http(base, 'GET', `/executions?status=COMPLETED&workflowId=${wf}`);
      expect(r.status).toBe(200);
      return r.json.executions.length > 0 ? r.json.executions : undefined;
    });
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ executionId: id, workflowId: wf, status: 'COMPLETED' });
    expect(listed[0].createdAt).toMatch(ISO);
    expect(Date.parse(listed[0].updatedAt)).toBeGreaterThanOrEqual(Date.parse(listed[0].createdAt));

    // Filters apply: another status or workflow does not list it.
    expect((await http(base, 'GET', `/executions?status=FAILED&workflowId=${wf}`)).json.executions).toEqual([]);
    await waitForStatus(base, other, ['COMPLETED']);
    const all = await until('both executions listed', async () => {
      const r = await http(base, 'GET', '/executions?status=COMPLETED');
      const ids = (r.json.executions as { executionId: string }[]).map((e) => e.executionId);
      return ids.includes(id) && ids.includes(other) ? r.json.executions : undefined;
    });
    expect(all.every((e: { status: string }) => e.status === 'COMPLETED')).toBe(true);
    expect((await http(base, 'GET', '/executions?limit=1')).json.executions).toHaveLength(1);
  });

  it('an unknown workflowId is a 404 problem and starts nothing', async () => {
    const wf = uniq('never-registered');
    const r = await http(base, 'POST', '/executions', { workflowId: wf });
    const p = expectProblem(r, 404, 'WORKFLOW_NOT_FOUND');
    expect(p.detail).toBe(`workflow '${wf}' not found`);
    expect((await http(base, 'GET', `/executions?workflowId=${wf}`)).json.executions).toEqual([]);
  });
});

describe('a submission naming an execution id that exists', () => {
  it('is a 409, and leaves the execution and its index entry as they were, also when only the log has it', async () => {
    const id = uniq('twice');
    const body = { definition: forkJoin(uniq('fj-twice')), input: { feature: 'x' }, executionId: id };
    expect((await http(base, 'POST', '/executions', body)).status).toBe(202);
    expect((await waitForStatus(base, id, ['COMPLETED', 'FAILED'])).status).toBe('COMPLETED');
    const again = expectProblem(await http(base, 'POST', '/executions', body), 409, 'EXECUTION_EXISTS');
    expect(again.detail).toContain(id);
    const listed = async () => ((await http(base, 'GET', '/executions?limit=1000')).json.executions as { executionId: string; status: string }[]).filter((e) => e.executionId === id);
    expect(await listed()).toMatchObject([{ status: 'COMPLETED' }]);
    const before = await events(base, id);

    // The index entry gone (deleted by hand): the log still says the execution exists.
    const nc = await connect({ servers: nats.url });
    try {
      await (await new Kvm(nc).open(EXECUTION_INDEX_BUCKET)).delete(id);
    } finally {
      await nc.close();
    }
    await until('the entry gone from the listing', async () => (await listed()).length === 0);
    expectProblem(await http(base, 'POST', '/executions', body), 409, 'EXECUTION_EXISTS');
    expect(await listed()).toEqual([]); // the entry the submission made is taken back
    expect(await events(base, id)).toEqual(before);
  });
});

describe('the workflow registry', () => {
  it('registers new versions, lists, reads the latest or a version, and 404s the unknown', async () => {
    const wf = uniq('registry');
    const v1def = { id: wf, steps: [{ id: 'only', type: 'transform', value: { v: 1 } }] };
    const v2def = { id: wf, steps: [{ id: 'only', type: 'transform', value: { v: 2 } }, { id: 'more', type: 'transform', value: 'x' }] };
    const r1 = await http(base, 'POST', '/workflows', v1def);
    expect(r1.status).toBe(201);
    expect(r1.json).toMatchObject({ id: wf, version: 1 });
    expect(r1.headers.get('location')).toBe(`/workflows/${wf}`);
    const r2 = await http(base, 'POST', '/workflows', v2def);
    expect(r2.status).toBe(201);
    expect(r2.json).toMatchObject({ id: wf, version: 2 });

    const list = await http(base, 'GET', '/workflows');
    expect(list.status).toBe(200);
    const mine = (list.json.workflows as { id: string; version: number; steps: number }[]).filter((w) => w.id === wf);
    expect(mine).toEqual([expect.objectContaining({ id: wf, version: 2, steps: 2 })]);

    const latest = await http(base, 'GET', `/workflows/${wf}`);
    expect(latest.status).toBe(200);
    expect(latest.json).toMatchObject({ id: wf, version: 2 });
    expect(latest.json.definition.steps.map((s: { id: string }) => s.id)).toEqual(['only', 'more']);
    const v1 = await http(base, 'GET', `/workflows/${wf}?version=1`);
    expect(v1.status).toBe(200);
    expect(v1.json).toMatchObject({ id: wf, version: 1 });
    expect(v1.json.definition.steps).toEqual([expect.objectContaining({ id: 'only', value: { v: 1 } })]);

    // Executions run the version asked for, else the latest.
    const e1 = (await http(base, 'POST', '/executions', { workflowId: wf, version: 1 })).json.executionId;
    const e2 = (await http(base, 'POST', '/executions', { workflowId: wf })).json.executionId;
    const d1 = await waitForStatus(base, e1, ['COMPLETED', 'FAILED']);
    const d2 = await waitForStatus(base, e2, ['COMPLETED', 'FAILED']);
    expect(Object.keys(d1.steps)).toEqual(['only']);
    expect(d1.steps.only.output).toEqual({ v: 1 });
    expect(Object.keys(d2.steps)).toEqual(['only', 'more']);
    expect(d2.steps.only.output).toEqual({ v: 2 });

    const unknown = uniq('nope');
    expect(expectProblem(await http(base, 'GET', `/workflows/${unknown}`), 404, 'WORKFLOW_NOT_FOUND').detail).toBe(`workflow '${unknown}' not found`);
    expect(expectProblem(await http(base, 'GET', `/workflows/${wf}?version=9`), 404, 'WORKFLOW_NOT_FOUND').detail).toBe(`workflow '${wf}@v9' not found`);
    expectProblem(await http(base, 'POST', '/executions', { workflowId: wf, version: 9 }), 404, 'WORKFLOW_NOT_FOUND');
  });

  it('refuses an invalid definition with 422 naming the path, and stores nothing', async () => {
    const wf = uniq('bad-registry');
    const r = await http(base, 'POST', '/workflows', { id: wf, steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'a', type: 'transform', value: 2 }] });
    const p = expectProblem(r, 422, 'INVALID_DEFINITION');
    expect(p.errors).toEqual([{ path: 'steps[1].id', message: "duplicate step id 'a' (also steps[0])" }]);
    expect(p.detail).toBe("steps[1].id: duplicate step id 'a' (also steps[0])");
    expectProblem(await http(base, 'GET', `/workflows/${wf}`), 404, 'WORKFLOW_NOT_FOUND');
  });
});

describe('idempotent submission', () => {
  it('the same Idempotency-Key twice: one execution, the second answer marked as replayed', async () => {
    const wf = uniq('idem');
    const key = uniq('key');
    const body = { definition: forkJoin(wf), input: { feature: 'a' } };
    const first = await http(base, 'POST', '/executions', body, { 'Idempotency-Key': key });
    expect(first.status).toBe(202);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const id = first.json.executionId;
    await waitForStatus(base, id, ['COMPLETED']);

    const second = await http(base, 'POST', '/executions', body, { 'Idempotency-Key': key });
    expect(second.status).toBe(202);
    expect(second.json.executionId).toBe(id);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(second.headers.get('location')).toBe(`/executions/${id}`);

    // A different key is a different execution.
    const third = await http(base, 'POST', '/executions', body, { 'Idempotency-Key': uniq('key') });
    expect(third.json.executionId).not.toBe(id);
    await waitForStatus(base, third.json.executionId, ['COMPLETED']);

    expect(count(await events(base, id), 'ExecutionStarted')).toBe(1);
    expect(count(await events(base, id), 'ExecutionCompleted')).toBe(1);
    const listed = await until('two executions listed', async () => {
      const r = await http(base, 'GET', `/executions?workflowId=${wf}&status=COMPLETED`);
      return r.json.executions.length >= 2 ? r.json.executions : undefined;
    });
    expect(listed.map((e: { executionId: string }) => e.executionId).sort()).toEqual([id, third.json.executionId].sort());
  });

  it('a key reused with a different body: never a second execution, and the answer describes the execution it names', async () => {
    const key = uniq('key');
    const wfA = uniq('idem-a');
    const first = await http(base, 'POST', '/executions', { definition: forkJoin(wfA), input: { feature: 'a' } }, { 'Idempotency-Key': key });
    expect(first.status).toBe(202);
    await waitForStatus(base, first.json.executionId, ['COMPLETED']);
    const wfB = uniq('idem-b');
    const reused = await http(base, 'POST', '/executions', { definition: forkJoin(wfB), input: { feature: 'b' } }, { 'Idempotency-Key': key });
    // Either refused as a mismatch (422, as the IETF Idempotency-Key draft suggests) or answered with the first execution.
    if (reused.status !== 422) {
      expect(reused.status).toBe(202);
      expect(reused.json.executionId).toBe(first.json.executionId);
      expect(reused.json.status).toBe('COMPLETED');
      expect(reused.json.workflowId, 'the replayed answer names the workflow of the execution it returns').toBe(wfA);
    }
    expect((await http(base, 'GET', `/executions?workflowId=${wfB}`)).json.executions).toEqual([]);
  });

  it('five concurrent submissions with one key: one execution id, one ExecutionStarted', async () => {
    const wf = uniq('idem-concurrent');
    const key = uniq('key');
    const body = { definition: forkJoin(wf), input: { feature: 'b' } };
    const rs = await Promise.all(Array.from({ length: 5 }, () => http(base, 'POST', '/executions', body, { 'Idempotency-Key': key })));
    for (const r of rs) expect(r.status, r.text).toBe(202);
    const ids = new Set(rs.map((r) => r.json.executionId));
    expect(ids.size).toBe(1);
    expect(rs.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(4);
    const [id] = ids;
    await waitForStatus(base, id, ['COMPLETED']);
    const evs = await events(base, id);
    expect(count(evs, 'ExecutionStarted')).toBe(1);
    expect(count(evs, 'StepStarted', 'draft')).toBe(1);
    const listed = await until('the execution listed', async () => {
      const r = await http(base, 'GET', `/executions?workflowId=${wf}&status=COMPLETED`);
      return r.json.executions.length > 0 ? r.json.executions : undefined;
    });
    expect(listed).toHaveLength(1);
  });
});

describe('ops endpoints', () => {
  it('GET /healthz and GET /readyz answer 200 with NATS up; GET /metrics has the http metrics', async () => {
    const health = await http(base, 'GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: 'ok' });
    expect(health.headers.get('cache-control')).toBe('no-store');
    expectSecurityHeaders(health);

    const ready = await http(base, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toEqual({ status: 'ready' });

    // Requests to count (a submission run to its end, a 404), then the scrape sees them under their route patterns.
    const submitted = await http(base, 'POST', '/executions', { definition: { id: uniq('metrics'), steps: [{ id: 'a', type: 'transform', value: 1 }] } });
    expect(submitted.status, submitted.text).toBe(202);
    await waitForStatus(base, submitted.json.executionId, ['COMPLETED']);
    await http(base, 'GET', '/executions/no-such-execution');
    const metrics = await http(base, 'GET', '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(metrics.text).toMatch(/^# TYPE http_requests_total counter$/m);
    expect(metrics.text).toMatch(/^# TYPE http_request_duration_seconds histogram$/m);
    expect(metrics.text).toMatch(/^http_requests_total\{method="POST",route="\/executions",status="202"\} [1-9]\d*$/m);
    expect(metrics.text).toMatch(/^http_requests_total\{method="GET",route="\/executions\/:id",status="404"\} [1-9]\d*$/m);
    expect(metrics.text).toMatch(/^http_request_duration_seconds_count\{method="GET",route="\/executions\/:id",status="404"\} [1-9]\d*$/m);
    expect(metrics.text).toMatch(/^process_cpu_user_seconds_total /m);
    // The engine's metrics, from the worker in the same process (the submission above completed).
    expect(metrics.text).toMatch(/^smartspec_events_appended_total\{type="StepCompleted"\} [1-9]\d*$/m);
    expect(metrics.text).toMatch(/^smartspec_executions_ended_total\{status="COMPLETED"\} [1-9]\d*$/m);
  });
});
