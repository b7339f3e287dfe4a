/**
 * GET /executions/:id/events/stream end to end: the log as Server-Sent
 * Events, read with fetch and parsed frame by frame. Live delivery in order,
 * the same records as GET /events, the stream ending after the execution
 * ends, replay of a finished execution, Last-Event-ID, and the 404.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';
import { events, expectProblem, expectSecurityHeaders, forkJoin, readSse, uniq, waitForEvent, type EventView, type SseFrame, type SseResult } from './http-helpers.js';

const nats = useNatsServer();
const start = useService(nats);
let base = '';
beforeAll(async () => {
  base = (await start()).url;
});

const stream = (id: string, query = '') => `${base}/executions/${id}/events/stream${query}`;
const records = (frames: SseFrame[]) => frames.filter((f) => f.event !== 'end');

/** Every record frame is `id: seq`, `event: type`, `data: {seq, ...record}`; seqs strictly increase. */
function expectWellFormed(res: SseResult): EventView[] {
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
  expect(res.headers.get('cache-control')).toBe('no-cache');
  expectSecurityHeaders(res);
  const out: EventView[] = [];
  for (const f of records(res.frames)) {
    const data = JSON.parse(f.data!) as EventView;
    expect(f.id).toBe(String(data.seq));
    expect(f.event).toBe(data.type);
    expect(data.hash).toMatch(/^[0-9a-f]{64}$/);
    out.push(data);
  }
  for (let i = 1; i < out.length; i++) expect(out[i].seq).toBeGreaterThan(out[i - 1].seq);
  return out;
}

/** The stream ended by the server, with one final `end` frame right after the execution's end. */
function expectEndedAfter(res: SseResult, lastType: string) {
  expect(res.ended, 'the server ended the stream').toBe(true);
  const last = res.frames[res.frames.length - 1];
  expect(last.event).toBe('end');
  expect(res.frames.filter((f) => f.event === 'end')).toHaveLength(1);
  expect(res.frames[res.frames.length - 2].event).toBe(lastType);
}

/** a → gate (waits for a signal) → b */
function gated(id: string) {
  return {
    id,
    steps: [
      { id: 'a', type: 'transform', value: 'A' },
      { id: 'gate', type: 'signal' },
      { id: 'b', type: 'transform', value: { got: '{{steps.gate.output}}' } },
    ],
  };
}

describe('the event stream (SSE)', () => {
  it('streams a live execution in order, the same records as /events, and ends after ExecutionCompleted', async () => {
    const r = await http(base, 'POST', '/executions', { definition: gated(uniq('sse-live')) });
    const id: string = r.json.executionId;
    await waitForStatus(base, id, ['WAITING']);

    let signalled = false;
    const res = await readSse(stream(id), {
      // Once the stream has caught up with the history (the gate is waiting), make the rest happen live.
      onFrame: async (f) => {
        if (!signalled && f.event === 'StepStarted' && JSON.parse(f.data!).stepId === 'gate') {
          signalled = true;
          const s = await http(base, 'POST', `/executions/${id}/signals/gate`, { go: true });
          expect(s.status, s.text).toBe(202);
        }
      },
    });
    expect(signalled).toBe(true);
    const streamed = expectWellFormed(res);
    expectEndedAfter(res, 'ExecutionCompleted');

    // The signal's consequences came through the open stream.
    const types = streamed.map((e) => e.type);
    expect(types).toContain('SignalReceived');
    expect(types.indexOf('SignalReceived')).toBeGreaterThan(types.indexOf('StepStarted'));
    const done = streamed[streamed.length - 1];
    expect(done.type).toBe('ExecutionCompleted');

    // Exactly what GET /events holds, in the same order.
    expect(streamed).toEqual(await events(base, id));
    expect((await http(base, 'GET', `/executions/${id}`)).json.steps.b.output).toEqual({ got: { go: true } });
  });

  it('connected right after submission: the whole history from ExecutionStarted, then the end', async () => {
    const r = await http(base, 'POST', '/executions', { definition: forkJoin(uniq('sse-early')), input: { feature: 'x' } });
    const id: string = r.json.executionId;
    const res = await readSse(stream(id));
    const streamed = expectWellFormed(res);
    expectEndedAfter(res, 'ExecutionCompleted');
    expect(streamed[0].type).toBe('ExecutionStarted');
    expect(streamed).toEqual(await events(base, id));
  });

  it('connected to a completed execution: replays the history, then ends', async () => {
    const r = await http(base, 'POST', '/executions', { definition: forkJoin(uniq('sse-done')), input: { feature: 'y' } });
    const id: string = r.json.executionId;
    await waitForStatus(base, id, ['COMPLETED']);
    const t0 = Date.now();
    const res = await readSse(stream(id), { timeoutMs: 5000 });
    expect(Date.now() - t0).toBeLessThan(3000); // ends by itself, well before the reader gives up
    const streamed = expectWellFormed(res);
    expectEndedAfter(res, 'ExecutionCompleted');
    expect(streamed).toEqual(await events(base, id));
  });

  it('Last-Event-ID resumes after that seq; ?from=seq starts at it', async () => {
    const r = await http(base, 'POST', '/executions', { definition: forkJoin(uniq('sse-resume')), input: { feature: 'z' } });
    const id: string = r.json.executionId;
    await waitForStatus(base, id, ['COMPLETED']);
    const all = await events(base, id);
    const cut = all[4].seq;

    const resumed = await readSse(stream(id), { headers: { 'Last-Event-ID': String(cut) } });
    const after = expectWellFormed(resumed);
    expectEndedAfter(resumed, 'ExecutionCompleted');
    expect(after.map((e) => e.seq)).toEqual(all.slice(5).map((e) => e.seq));
    expect(after).toEqual(all.slice(5));

    const from = await readSse(stream(id, `?from=${cut}`));
    expect(expectWellFormed(from).map((e) => e.seq)).toEqual(all.slice(4).map((e) => e.seq));
    expectEndedAfter(from, 'ExecutionCompleted');
  });

  it('Last-Event-ID at the final record (an EventSource reconnecting after the end): ends at once, without re-sending', async () => {
    const r = await http(base, 'POST', '/executions', { definition: forkJoin(uniq('sse-reconnect')), input: { feature: 'w' } });
    const id: string = r.json.executionId;
    await waitForStatus(base, id, ['COMPLETED']);
    const all = await events(base, id);
    const t0 = Date.now();
    const res = await readSse(stream(id), { headers: { 'Last-Event-ID': String(all[all.length - 1].seq) }, timeoutMs: 4000 });
    expect(res.ended, `the stream of a finished execution must end, not hang open (${res.text ?? 'headers received'})`).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(res.status).toBe(200);
    expect(records(res.frames)).toEqual([]);
  });

  it('sends the response headers at once, before any record is due (EventSource open)', async () => {
    const r = await http(base, 'POST', '/executions', { definition: gated(uniq('sse-open')) });
    const id: string = r.json.executionId;
    await waitForStatus(base, id, ['WAITING']);
    const all = await events(base, id);
    // Caught up: nothing more will come until the signal.
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 3000);
    const t0 = Date.now();
    try {
      const res = await fetch(stream(id), { headers: { 'Last-Event-ID': String(all[all.length - 1].seq) }, signal: controller.signal }).catch((err) => {
        if (controller.signal.aborted) return undefined;
        throw err;
      });
      expect(res, 'no response headers within 3 s of connecting').toBeDefined();
      expect(Date.now() - t0).toBeLessThan(1000);
      expect(res!.status).toBe(200);
      expect(res!.headers.get('content-type')).toMatch(/^text\/event-stream/);
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
    // The stream still works afterwards: signal it and read from the same point to the end.
    expect((await http(base, 'POST', `/executions/${id}/signals/gate`, {})).status).toBe(202);
    const rest = await readSse(stream(id, `?from=${all[all.length - 1].seq + 1}`));
    expectEndedAfter(rest, 'ExecutionCompleted');
    expect(expectWellFormed(rest)[0].type).toBe('SignalReceived');
  });

  it('a failed-then-resumed execution: the stream runs past the earlier ExecutionFailed to the final end', async () => {
    const wf = uniq('sse-resumed');
    const r = await http(base, 'POST', '/executions', {
      definition: { id: wf, steps: [{ id: 'ok', type: 'transform', value: 1 }, { id: 'boom', type: 'fail', message: 'broken' }] },
    });
    const id: string = r.json.executionId;
    await waitForStatus(base, id, ['FAILED']);

    const failed = await readSse(stream(id));
    expectWellFormed(failed);
    expectEndedAfter(failed, 'ExecutionFailed');

    const res = await http(base, 'POST', `/executions/${id}/resume`, {
      fromStep: 'boom',
      steps: { steps: [{ id: 'ok', type: 'transform', value: 1 }, { id: 'boom', type: 'transform', value: 'fixed' }] },
    });
    expect(res.status, res.text).toBe(202);
    await waitForEvent(base, id, (e) => e.type === 'ExecutionCompleted', 'the resumed execution to complete');

    const full = await readSse(stream(id));
    const streamed = expectWellFormed(full);
    expectEndedAfter(full, 'ExecutionCompleted');
    expect(streamed.map((e) => e.type)).toContain('ExecutionFailed');
    expect(streamed).toEqual(await events(base, id));
  });

  it('an unknown execution is a 404 problem, not a stream', async () => {
    const r = await http(base, 'GET', '/executions/no-such-execution/events/stream');
    const p = expectProblem(r, 404, 'EXECUTION_NOT_FOUND');
    expect(p.detail).toBe("execution 'no-such-execution' not found");
    const bad = await http(base, 'GET', '/executions/not%20an%20id/events/stream');
    expect(expectProblem(bad, 422, 'VALIDATION_FAILED').errors?.[0].path).toBe('params.id');
  });
});
