/**
 * Signals over HTTP (real HTTP, real nats-server, real workers): a parallel
 * group of two signal steps waits; each delivered payload becomes its own
 * step's output whatever the order; refusals are 409; and a waiting
 * execution survives its service being stopped and another one started.
 */
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';
import { count, events, expectProblem, uniq, until, waitForEvent } from './http-helpers.js';

const nats = useNatsServer();
const start = useService(nats);
let shared: string | undefined;
/** One service for the file's ordinary cases; the restart case starts its own. */
const service = async () => (shared ??= (await start()).url);

/** draft → {legal, security} (both wait for a signal) → merge. */
function approval(id: string) {
  return {
    id,
    steps: [
      { id: 'draft', type: 'transform', value: { text: 'spec of {{input.feature}}' } },
      { id: 'legal', type: 'signal' },
      { id: 'security', type: 'signal' },
      { id: 'merge', type: 'transform', value: { legal: '{{steps.legal.output}}', security: '{{steps.security.output}}', draft: '{{steps.draft.output.text}}' } },
    ],
    parallel: [['legal', 'security']],
  };
}

const PAYLOADS = {
  legal: { approved: true, by: 'counsel', note: 'fine' },
  security: { approved: false, score: 3, findings: ['ssrf'] },
};

async function waiting(base: string): Promise<string> {
  const r = await http(base, 'POST', '/executions', { definition: approval(uniq('approval')), input: { feature: 'sso' } });
  expect(r.status).toBe(202);
  const id: string = r.json.executionId;
  const w = await waitForStatus(base, id, ['WAITING', 'COMPLETED', 'FAILED']);
  expect(w.status).toBe('WAITING');
  expect(w.steps.draft).toMatchObject({ phase: 'done', output: { text: 'spec of sso' } });
  expect(w.steps.legal.phase).toBe('waiting');
  expect(w.steps.security.phase).toBe('waiting');
  expect(w.steps.merge.phase).toBe('pending');
  return id;
}

/** Deliver one signal and wait until its step has the payload as output. */
async function deliver(base: string, id: string, name: 'legal' | 'security') {
  const r = await http(base, 'POST', `/executions/${id}/signals/${name}`, PAYLOADS[name]);
  expect(r.status, r.text).toBe(202);
  expect(r.json).toMatchObject({ executionId: id, signal: name, stepId: name });
  return until(`step ${name} to take its signal`, async () => {
    const s = (await http(base, 'GET', `/executions/${id}`)).json;
    return s.steps[name].phase === 'done' ? s : undefined;
  });
}

async function expectCompletedWithOwnPayloads(base: string, id: string, timeoutMs = 10_000) {
  const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED', 'CANCELLED'], timeoutMs);
  expect(done.status).toBe('COMPLETED');
  expect(done.steps.legal.output).toEqual(PAYLOADS.legal);
  expect(done.steps.security.output).toEqual(PAYLOADS.security);
  expect(done.steps.merge.output).toEqual({ legal: PAYLOADS.legal, security: PAYLOADS.security, draft: 'spec of sso' });
  const evs = await events(base, id);
  const signals = evs.filter((e) => e.type === 'SignalReceived');
  expect(signals.map((e) => [e.name, e.stepId])).toEqual(expect.arrayContaining([['legal', 'legal'], ['security', 'security']]));
  expect(signals).toHaveLength(2);
  expect(signals.find((e) => e.name === 'legal')!.payload).toEqual(PAYLOADS.legal);
  expect(signals.find((e) => e.name === 'security')!.payload).toEqual(PAYLOADS.security);
  expect(count(evs, 'StepStarted', 'draft')).toBe(1);
  expect(count(evs, 'ExecutionCompleted')).toBe(1);
  return evs;
}

describe('signals over HTTP', () => {
  it('legal first, then security: each payload is its own step output, then COMPLETED', async () => {
    const base = await service();
    const id = await waiting(base);
    const afterLegal = await deliver(base, id, 'legal');
    expect(afterLegal.status).toBe('WAITING'); // security still waits
    expect(afterLegal.steps.legal.output).toEqual(PAYLOADS.legal);
    expect(afterLegal.steps.security.phase).toBe('waiting');
    expect(afterLegal.steps.security.output).toBeUndefined();
    await deliver(base, id, 'security');
    const evs = await expectCompletedWithOwnPayloads(base, id);
    expect(evs.filter((e) => e.type === 'SignalReceived').map((e) => e.name)).toEqual(['legal', 'security']);
  });

  it('security first, then legal: each payload is its own step output, then COMPLETED', async () => {
    const base = await service();
    const id = await waiting(base);
    const afterSecurity = await deliver(base, id, 'security');
    expect(afterSecurity.status).toBe('WAITING');
    expect(afterSecurity.steps.security.output).toEqual(PAYLOADS.security);
    expect(afterSecurity.steps.legal.phase).toBe('waiting');
    await deliver(base, id, 'legal');
    const evs = await expectCompletedWithOwnPayloads(base, id);
    expect(evs.filter((e) => e.type === 'SignalReceived').map((e) => e.name)).toEqual(['security', 'legal']);
  });

  it('both signals sent back to back (without waiting between them): both land on their own steps', async () => {
    const base = await service();
    const id = await waiting(base);
    const [a, b] = await Promise.all([
      http(base, 'POST', `/executions/${id}/signals/security`, PAYLOADS.security),
      http(base, 'POST', `/executions/${id}/signals/legal`, PAYLOADS.legal),
    ]);
    expect(a.status, a.text).toBe(202);
    expect(b.status, b.text).toBe(202);
    // Both were accepted (202), so neither may be lost.
    await expectCompletedWithOwnPayloads(base, id, 5000);
  });

  it('refuses a signal nobody awaits, a repeated signal, and any signal after completion (409)', async () => {
    const base = await service();
    const id = await waiting(base);
    const before = (await events(base, id)).length;

    const unknown = expectProblem(await http(base, 'POST', `/executions/${id}/signals/finance`, { ok: true }), 409, 'INVALID_EXECUTION_STATE');
    expect(unknown.detail).toBe(`no step of execution '${id}' awaits signal 'finance'`);
    // A step that exists but is not a signal step is no signal name either.
    expectProblem(await http(base, 'POST', `/executions/${id}/signals/merge`, {}), 409, 'INVALID_EXECUTION_STATE');
    expect((await events(base, id)).length).toBe(before);

    await deliver(base, id, 'legal');
    const repeated = expectProblem(await http(base, 'POST', `/executions/${id}/signals/legal`, { approved: false }), 409, 'INVALID_EXECUTION_STATE');
    expect(repeated.detail).toBe(`signal 'legal' was already delivered to execution '${id}'`);

    await deliver(base, id, 'security');
    await expectCompletedWithOwnPayloads(base, id);
    const late = expectProblem(await http(base, 'POST', `/executions/${id}/signals/security`, { approved: true }), 409, 'INVALID_EXECUTION_STATE');
    expect(late.detail).toBe(`execution '${id}' is COMPLETED: it takes no signals`);
    expect(count(await events(base, id), 'SignalReceived')).toBe(2);

    expectProblem(await http(base, 'POST', '/executions/no-such-execution/signals/legal', {}), 404, 'EXECUTION_NOT_FOUND');
  });

  it('cancelling a WAITING execution: CANCELLED, and later signals are refused', async () => {
    const base = await service();
    const id = await waiting(base);
    const c = await http(base, 'POST', `/executions/${id}/cancel`, { reason: 'nobody will approve' });
    expect(c.status, c.text).toBe(202);
    const done = await waitForStatus(base, id, ['CANCELLED', 'COMPLETED', 'FAILED'], 5000);
    expect(done.status).toBe('CANCELLED');
    const evs = await events(base, id);
    expect(evs[evs.length - 1]).toMatchObject({ type: 'ExecutionCancelled', reason: 'nobody will approve' });
    expect(count(evs, 'SignalReceived')).toBe(0);
    const late = expectProblem(await http(base, 'POST', `/executions/${id}/signals/legal`, {}), 409, 'INVALID_EXECUTION_STATE');
    expect(late.detail).toBe(`execution '${id}' is CANCELLED: it takes no signals`);
  });

  it('a signal without a body delivers an empty payload', async () => {
    const base = await service();
    const id = await waiting(base);
    const r = await http(base, 'POST', `/executions/${id}/signals/legal`);
    expect(r.status, r.text).toBe(202);
    await waitForEvent(base, id, (e) => e.type === 'SignalReceived' && e.name === 'legal', 'the legal signal');
    await deliver(base, id, 'security');
    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.steps.legal.output).toEqual({});
    expect(done.steps.security.output).toEqual(PAYLOADS.security);
  });
});

describe('a waiting execution across a service restart', () => {
  it('stops the service while WAITING; a new service takes the signals and completes it', async () => {
    const first = await start();
    const id = await waiting(first.url);
    await deliver(first.url, id, 'legal');
    await first.stop();
    await expect(fetch(`${first.url}/healthz`)).rejects.toThrow();

    const second = await start();
    expect(second.url).not.toBe(first.url);
    const w = (await http(second.url, 'GET', `/executions/${id}`)).json;
    expect(w.status).toBe('WAITING');
    expect(w.steps.legal.output).toEqual(PAYLOADS.legal);
    await deliver(second.url, id, 'security');
    const evs = await expectCompletedWithOwnPayloads(second.url, id);
    // The restart neither re-ran nor re-recorded anything.
    expect(count(evs, 'ExecutionStarted')).toBe(1);
    expect(count(evs, 'StepCompleted', 'draft')).toBe(1);
  });
});
