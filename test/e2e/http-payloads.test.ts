/**
 * Large and deep submissions over real HTTP, against a nats-server with the
 * stock 1 MB max_payload: a 1.5 MB input runs to COMPLETED (it travels as a
 * ref), a submission whose command NATS could not carry gets 413 and a deeply
 * nested one 422, both leaving no execution behind; a large signal payload
 * completes its step.
 */
import { describe, expect, it } from 'vitest';
import { isPayloadRef } from '../../src/payloads/refs.js';
import { DEFAULT_MAX_PAYLOAD, useNatsServerWithDefaultPayload } from '../support/natsDefaultPayload.js';
import { http, useService, waitForStatus } from '../support/service.js';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connectNats } from '../../src/nats/connect.js';
import { events, expectProblem, uniq, until } from './http-helpers.js';

const nats = useNatsServerWithDefaultPayload();
const start = useService(nats);
let shared: string | undefined;
const service = async () => (shared ??= (await start()).url);

const MB = 1024 * 1024;

/** Nothing of the execution is left: not readable, not listed. */
async function expectNoTrace(base: string, executionId: string, workflowId: string) {
  expect((await http(base, 'GET', `/executions/${executionId}`)).status).toBe(404);
  const list = await http(base, 'GET', `/executions?workflowId=${workflowId}`);
  expect(list.status).toBe(200);
  expect(list.json.executions).toEqual([]);
}

describe('large and deep submissions', () => {
  it('a 1.5 MB input is accepted (202) and runs to COMPLETED; reads show the value, the log a ref', async () => {
    const base = await service();
    const input = { name: 'big', text: 'x'.repeat(1.5 * MB) };
    const r = await http(base, 'POST', '/executions', {
      definition: { id: uniq('big-input'), steps: [{ id: 'copy', type: 'transform', value: { name: '{{input.name}}', text: '{{input.text}}' } }] },
      input,
    });
    expect(r.status, r.text).toBe(202);
    const done = await waitForStatus(base, r.json.executionId, ['COMPLETED', 'FAILED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.steps.copy.output).toEqual(input);
    expect(done.output).toEqual(input);

    const evs = await events(base, r.json.executionId);
    const started = evs.find((e) => e.type === 'ExecutionStarted')!;
    expect(isPayloadRef(started.input)).toBe(true);
    for (const e of evs) expect(Buffer.byteLength(JSON.stringify(e)), e.type).toBeLessThan(4096);
  });

  it('a submission whose command NATS cannot carry (a 1.5 MB definition) gets 413 and leaves no execution behind', async () => {
    const base = await service();
    const workflowId = uniq('big-definition');
    const executionId = uniq('big-def-run');
    const r = await http(base, 'POST', '/executions', {
      executionId,
      definition: { id: workflowId, steps: [{ id: 'a', type: 'transform', value: { text: 'd'.repeat(1.5 * MB) } }] },
    });
    const problem = expectProblem(r, 413, 'COMMAND_TOO_LARGE');
    expect(problem.detail).toMatch(/max_payload/);
    expect(problem.maxBytes).toBe(DEFAULT_MAX_PAYLOAD);
    await expectNoTrace(base, executionId, workflowId);
  });

  it('an input nested 4,500 levels deep gets 422 problem+json naming the limit, and leaves no execution behind', async () => {
    const base = await service();
    const workflowId = uniq('deep-input');
    const executionId = uniq('deep-run');
    const definition = JSON.stringify({ id: workflowId, steps: [{ id: 'a', type: 'transform', value: 1 }] });
    const body = `{"executionId":"${executionId}","definition":${definition},"input":{"a":${'['.repeat(4500)}${']'.repeat(4500)}}}`;
    const r = await http(base, 'POST', '/executions', body, { 'content-type': 'application/json' });
    const problem = expectProblem(r, 422, 'INPUT_TOO_DEEP');
    expect(problem.detail).toMatch(/input nests deeper than 100 levels/);
    expect(problem.maxNesting).toBe(100);
    await expectNoTrace(base, executionId, workflowId);
  });

  it('a workflow whose definition nests 4,500 levels deep is not registered: 422', async () => {
    const base = await service();
    const workflowId = uniq('deep-workflow');
    const body = `{"id":"${workflowId}","steps":[{"id":"a","type":"transform","value":${'['.repeat(4500)}${']'.repeat(4500)}}]}`;
    const r = await http(base, 'POST', '/workflows', body, { 'content-type': 'application/json' });
    expect(expectProblem(r, 422, 'INPUT_TOO_DEEP').detail).toMatch(/definition nests deeper than 100 levels \(at steps\[0\]\.value/);
    expect((await http(base, 'GET', `/workflows/${workflowId}`)).status).toBe(404);
  });

  it('a start command published on NATS with a definition nested 4,500 levels deep is refused once and acked, never redelivered', async () => {
    await service();
    const nc = await connectNats(nats.url, 'test-publisher');
    try {
      const executionId = uniq('deep-command');
      const body = `{"executionId":"${executionId}","definition":{"id":"deep","steps":[{"id":"a","type":"transform","value":${'['.repeat(4500)}${']'.repeat(4500)}}]}}`;
      await jetstream(nc).publish('smartspec.cmd.start', body, { msgID: `start:${executionId}` });
      const jsm = await jetstreamManager(nc);
      const info = await until('the command to be handled', async () => {
        const c = await jsm.consumers.info('SMARTSPEC_COMMANDS', 'smartspec-workers');
        return c.num_pending === 0 && c.num_ack_pending === 0 ? c : undefined;
      });
      expect(info.num_redelivered).toBe(0);
      expect((await http(await service(), 'GET', `/executions/${executionId}`)).status).toBe(404);
      await new Promise((r) => setTimeout(r, 2500)); // past a nak's 2 s delay: nothing comes back
      expect((await jsm.consumers.info('SMARTSPEC_COMMANDS', 'smartspec-workers')).num_redelivered).toBe(0);
    } finally {
      await nc.close();
    }
  });

  it('a large signal payload is delivered and read by a later step', async () => {
    const base = await service();
    const r = await http(base, 'POST', '/executions', {
      definition: { id: uniq('big-signal'), steps: [{ id: 'approve', type: 'signal' }, { id: 'use', type: 'transform', value: '{{steps.approve.output.by}}' }] },
    });
    expect(r.status, r.text).toBe(202);
    const id = r.json.executionId;
    expect((await waitForStatus(base, id, ['WAITING'])).status).toBe('WAITING');
    const payload = { by: 'legal', attachment: 'a'.repeat(2 * MB) };
    const s = await http(base, 'POST', `/executions/${id}/signals/approve`, payload);
    expect(s.status, s.text).toBe(202);
    const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED']);
    expect(done.status).toBe('COMPLETED');
    expect(done.steps.use.output).toBe('legal');
    expect(done.steps.approve.output).toEqual(payload);
  });
});

describe('a submission the edge cannot publish', () => {
  // Last in the file: it takes the command stream away.
  it('gets 503 and leaves no PENDING entry behind', async () => {
    const base = await service();
    const nc = await connectNats(nats.url, 'test-admin');
    try {
      await (await jetstreamManager(nc)).streams.delete('SMARTSPEC_COMMANDS');
      const workflowId = uniq('unpublished');
      const executionId = uniq('unpublished-run');
      const r = await http(base, 'POST', '/executions', { executionId, definition: { id: workflowId, steps: [{ id: 'a', type: 'transform', value: 1 }] } });
      expect(r.status, r.text).toBe(503);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      await expectNoTrace(base, executionId, workflowId);
    } finally {
      await nc.close();
    }
  });
});
