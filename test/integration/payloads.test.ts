/**
 * Large values by reference, on a nats-server with the stock 1 MB max_payload:
 * a 10 MB output flows through later steps while its record stays under 1 KB;
 * outputs over the limit, too deep, or whose record NATS refuses fail once and
 * for good; large inputs and signal payloads travel as refs; replay checks
 * every stored value and catches one replaced in the bucket.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Objm } from '@nats-io/obj';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPayloadRef, type PayloadRef } from '../../src/payloads/refs.js';
import { PayloadStore } from '../../src/payloads/store.js';
import { replayWithPayloads } from '../../src/payloads/verify.js';
import { loadExecution, summarize } from '../../src/log/views.js';
import { PAYLOADS_BUCKET } from '../../src/nats/names.js';
import { def, stepEvents, useEngine } from '../support/engine.js';
import { until } from '../support/processes.js';
import { ExecutionIndex } from '../../src/registry/executionIndex.js';
import { Engine } from '../../src/worker/engine.js';
import { DEFAULT_MAX_PAYLOAD, useNatsServerWithDefaultPayload } from '../support/natsDefaultPayload.js';
import { plainContext } from '../support/context.js';

const nats = useNatsServerWithDefaultPayload();
const fx = useEngine(nats);

const MB = 1024 * 1024;
/** About 10 MB of JSON: 10,000 strings of 1,000 characters. */
const BIG = { marker: 'the-marker', items: Array.from({ length: 10_000 }, (_, i) => `${i}:`.padEnd(1000, 'x')) };
const BIG_JSON = JSON.stringify(BIG);
const DEEP_JSON = '['.repeat(4500) + ']'.repeat(4500);

const requests = new Map<string, number>();
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.set(req.url!, (requests.get(req.url!) ?? 0) + 1);
    if (req.url === '/big') return res.writeHead(200, { 'content-type': 'application/json' }).end(BIG_JSON);
    if (req.url === '/deep') return res.writeHead(200, { 'content-type': 'application/json' }).end(DEEP_JSON);
    if (req.url === '/huge') {
      // 100 MB, streamed without a length, 1 MB at a time as the client reads.
      res.writeHead(200, { 'content-type': 'text/plain' });
      const chunk = Buffer.alloc(MB, 'a');
      let sent = 0;
      const more = () => {
        while (sent < 100) {
          sent++;
          if (!res.write(chunk)) return void res.once('drain', more);
        }
        res.end();
      };
      res.on('error', () => undefined);
      return more();
    }
    if (req.url === '/echo') {
      let bytes = 0;
      const parts: Buffer[] = [];
      req.on('data', (d: Buffer) => { bytes += d.length; parts.push(d); });
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(parts).toString('utf8')) as typeof BIG;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes, marker: body.marker, items: body.items.length }));
      });
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

let n = 0;
const newId = (p: string) => `${p}-${Date.now().toString(36)}-${++n}`;
const recordBytes = (r: object) => Buffer.byteLength(JSON.stringify(r));

describe('large values by reference', () => {
  it('a 10 MB output flows through two later steps, its record is under 1 KB, and the execution replays and verifies', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({
      executionId: newId('big'),
      definition: def({
        id: 'big-output',
        steps: [
          { id: 'fetch', type: 'http', request: { method: 'GET', url: `${base}/big` } },
          { id: 'pick', type: 'transform', when: '{{steps.fetch.output.body.marker}}', value: { marker: '{{steps.fetch.output.body.marker}}', third: '{{steps.fetch.output.body.items.2}}' } },
          { id: 'send', type: 'http', request: { method: 'POST', url: `${base}/echo`, body: '{{steps.fetch.output.body}}' } },
        ],
      }),
    });
    const outcome = await runner.settled();
    expect(outcome.status, JSON.stringify(outcome.snapshot.context.errors)).toBe('COMPLETED');

    const records = await fx.log.read(runner.executionId);
    const fetched = records.find((r) => r.record.type === 'StepCompleted' && r.record.stepId === 'fetch')!;
    expect(recordBytes(fetched.record)).toBeLessThan(1024);
    const ref = (fetched.record as { output: PayloadRef }).output;
    expect(isPayloadRef(ref)).toBe(true);
    expect(ref.bytes).toBeGreaterThan(10_000_000);
    for (const r of records) expect(recordBytes(r.record), r.record.type).toBeLessThan(DEFAULT_MAX_PAYLOAD);

    const ctx = plainContext(outcome.snapshot.context);
    expect(ctx.outputs.pick).toEqual({ marker: 'the-marker', third: BIG.items[2] });
    expect((ctx.outputs.send as { body: unknown }).body).toEqual({ bytes: Buffer.byteLength(BIG_JSON), marker: 'the-marker', items: 10_000 });
    expect(requests.get('/big')).toBe(1);

    const report = await replayWithPayloads(runner.executionId, records, engine.payloads);
    expect(report.chainBreaks).toEqual([]);
    expect(report.payloads).toEqual([expect.objectContaining({ ok: true, ref: ref.$ref })]);
    expect(report.ok).toBe(true);

    // Reads resolve the ref: the summary shows the output itself.
    const summary = (await engine.payloads.resolveDeep(summarize(await loadExecution(fx.log, runner.executionId)))) as ReturnType<typeof summarize>;
    expect(summary.steps.fetch.output).toEqual({ status: 200, body: BIG });
  }, 90_000);

  it('a 100 MB http response fails the step with OUTPUT_TOO_LARGE after one attempt, and the execution is FAILED', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({
      executionId: newId('huge'),
      definition: def({
        id: 'huge-output',
        steps: [{ id: 'fetch', type: 'http', request: { method: 'GET', url: `${base}/huge` }, retry: { maxAttempts: 3, initialDelayMs: 0 } }],
      }),
    });
    const outcome = await runner.settled();
    expect(outcome.status).toBe('FAILED');
    expect(outcome.snapshot.context.error).toMatchObject({ code: 'OUTPUT_TOO_LARGE', retryable: false });
    const records = await fx.log.read(runner.executionId);
    expect(stepEvents(records, 'StepStarted')).toEqual(['fetch']);
    expect(records.at(-1)!.record.type).toBe('ExecutionFailed');
    expect(requests.get('/huge')).toBe(1);
  }, 90_000);

  it('a transform output over a configured maximum fails with OUTPUT_TOO_LARGE, not retried', async () => {
    const payloads = new PayloadStore(fx.nc, { limits: { inlineMaxBytes: 64 * 1024, maxBytes: MB, maxNesting: 100 } });
    const engine = await Engine.create({ nc: fx.nc, log: fx.log, payloads });
    const runner = await engine.start({
      executionId: newId('transform-max'),
      input: { s: 's'.repeat(600_000) },
      definition: def({ id: 'transform-max', steps: [{ id: 'twice', type: 'transform', value: ['{{input.s}}', '{{input.s}}'], retry: { maxAttempts: 3, initialDelayMs: 0 } }] }),
    });
    const outcome = await runner.settled();
    expect(outcome.status).toBe('FAILED');
    expect(outcome.snapshot.context.error).toMatchObject({ code: 'OUTPUT_TOO_LARGE', retryable: false, details: { maxBytes: MB } });
    expect(outcome.snapshot.context.error?.message).toMatch(/the output of step 'twice' is 1200007 bytes, over the limit of 1048576 bytes/);
    expect(stepEvents(await fx.log.read(runner.executionId), 'StepStarted')).toEqual(['twice']);
    await engine.close();
  });

  it('an output nested 4,500 levels deep fails with OUTPUT_TOO_DEEP after one attempt', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({
      executionId: newId('deep'),
      definition: def({ id: 'deep-output', steps: [{ id: 'fetch', type: 'http', request: { method: 'GET', url: `${base}/deep` }, retry: { maxAttempts: 3, initialDelayMs: 0 } }] }),
    });
    const outcome = await runner.settled();
    expect(outcome.status).toBe('FAILED');
    expect(outcome.snapshot.context.error).toMatchObject({ code: 'OUTPUT_TOO_DEEP', retryable: false });
    expect(stepEvents(await fx.log.read(runner.executionId), 'StepStarted')).toEqual(['fetch']);
  });

  it('a record NATS refuses as too large becomes a non-retryable failure on the execution, not a retry loop', async () => {
    const engine = await fx.engine();
    // The error message is the 10 MB list: its StepFailed record cannot be stored.
    const runner = await engine.start({
      executionId: newId('refused'),
      definition: def({
        id: 'huge-error',
        steps: [
          { id: 'fetch', type: 'http', request: { method: 'GET', url: `${base}/big` } },
          { id: 'boom', type: 'fail', message: '{{steps.fetch.output.body.items}}', retryable: true, retry: { maxAttempts: 5, initialDelayMs: 0 } },
        ],
      }),
    });
    const outcome = await runner.settled();
    expect(outcome.status).toBe('FAILED');
    expect(plainContext(outcome.snapshot.context).errors.boom).toMatchObject({ code: 'RECORD_TOO_LARGE', retryable: false });
    const records = await fx.log.read(runner.executionId);
    expect(stepEvents(records, 'StepStarted')).toEqual(['fetch', 'boom']);
    expect(records.at(-1)!.record.type).toBe('ExecutionFailed');
    expect((await replayWithPayloads(runner.executionId, records, engine.payloads)).ok).toBe(true);
  });

  it('a cancel whose reason is too large to record still cancels (the reason is cut)', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({ executionId: newId('cancel'), definition: def({ id: 'cancel-big', steps: [{ id: 'wait', type: 'signal' }] }) });
    expect((await runner.settled()).status).toBe('WAITING');
    await engine.cancel(runner.executionId, 'r'.repeat(2 * MB));
    const last = (await fx.log.last(runner.executionId))!.record as { type: string; reason: string };
    expect(last.type).toBe('ExecutionCancelled');
    expect(last.reason).toMatch(/^r{1000}… \(cut/);
  });

  it('a large input and a large signal payload travel as refs and templates read into them', async () => {
    const engine = await fx.engine();
    const input = { user: 'ana', blob: 'i'.repeat(2 * MB) };
    const runner = await engine.start({
      executionId: newId('signal'),
      input,
      definition: def({
        id: 'big-signal',
        steps: [
          { id: 'approve', type: 'signal' },
          { id: 'use', type: 'transform', value: { user: '{{input.user}}', by: '{{steps.approve.output.by}}', size: '{{steps.approve.output.size}}' } },
        ],
      }),
    });
    expect((await runner.settled()).status).toBe('WAITING');
    await engine.signal(runner.executionId, 'approve', { by: 'legal', size: 3, attachment: 's'.repeat(3 * MB) });
    const outcome = await runner.settled();
    expect(outcome.status).toBe('COMPLETED');
    expect(plainContext(outcome.snapshot.context).outputs.use).toEqual({ user: 'ana', by: 'legal', size: 3 });

    const records = await fx.log.read(runner.executionId);
    const started = records.find((r) => r.record.type === 'ExecutionStarted')!.record as { input: unknown };
    const signalled = records.find((r) => r.record.type === 'SignalReceived')!.record as { payload: unknown };
    expect(isPayloadRef(started.input)).toBe(true);
    expect(isPayloadRef(signalled.payload)).toBe(true);
    expect(recordBytes(started)).toBeLessThan(2048);
    expect(recordBytes(signalled)).toBeLessThan(1024);
    expect(await engine.payloads.resolve(started.input)).toEqual(input);
  });

  it('an input nested 4,500 levels deep is refused before anything is recorded, and its PENDING index entry goes', async () => {
    const index = await ExecutionIndex.open(fx.nc);
    const engine = await Engine.create({ nc: fx.nc, log: fx.log, index });
    const executionId = newId('deep-input');
    const now = new Date().toISOString();
    await index.put({ executionId, workflowId: 'x', status: 'PENDING', createdAt: now, updatedAt: now }); // as the edge writes it
    await expect(engine.start({ executionId, input: JSON.parse(DEEP_JSON), definition: def({ id: 'x', steps: [{ id: 'a', type: 'transform', value: 1 }] }) })).rejects.toMatchObject({ code: 'INPUT_TOO_DEEP' });
    expect(await fx.log.last(executionId)).toBeNull();
    await until('the index entry to go', async () => (await index.get(executionId)) === undefined);
    await engine.close();
  });

  it('a parallel last stage whose outputs are small one by one but large together completes with a small record', async () => {
    const engine = await fx.engine();
    const ids = Array.from({ length: 20 }, (_, i) => `part${i}`);
    const runner = await engine.start({
      executionId: newId('wide'),
      input: { chunk: 'c'.repeat(60_000) },
      definition: def({
        id: 'wide-end',
        steps: [{ id: 'first', type: 'transform', value: 1 }, ...ids.map((id) => ({ id, type: 'transform', value: { id, chunk: '{{input.chunk}}' } }))],
        parallel: [ids],
      }),
    });
    const outcome = await runner.settled();
    expect(outcome.status, JSON.stringify(outcome.snapshot.context.error)).toBe('COMPLETED');
    const records = await fx.log.read(runner.executionId);
    const completed = records.at(-1)!.record as { type: string; output: Record<string, unknown> };
    expect(completed.type).toBe('ExecutionCompleted');
    expect(recordBytes(completed)).toBeLessThan(20 * 1024);
    expect(Object.values(completed.output).every(isPayloadRef)).toBe(true);
    const output = (await engine.payloads.resolveDeep(completed.output)) as Record<string, { id: string; chunk: string }>;
    expect(output.part7).toEqual({ id: 'part7', chunk: 'c'.repeat(60_000) });
    expect((await replayWithPayloads(runner.executionId, records, engine.payloads)).ok).toBe(true);
  });

  it('replay detects a stored value that was replaced in the bucket', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({
      executionId: newId('tamper'),
      input: { text: 't'.repeat(200_000) },
      definition: def({ id: 'tamper', steps: [{ id: 'copy', type: 'transform', value: { text: '{{input.text}}', n: 1 } }] }),
    });
    expect((await runner.settled()).status).toBe('COMPLETED');
    const records = await fx.log.read(runner.executionId);
    expect((await replayWithPayloads(runner.executionId, records, engine.payloads)).ok).toBe(true);

    const output = (records.find((r) => r.record.type === 'StepCompleted')!.record as { output: PayloadRef }).output;
    expect(isPayloadRef(output)).toBe(true);
    const bucket = await new Objm(fx.nc).open(PAYLOADS_BUCKET);
    const name = output.$ref.slice(`obj:${PAYLOADS_BUCKET}/`.length);
    await bucket.putBlob({ name }, new TextEncoder().encode(JSON.stringify({ text: 'forged', n: 1 })));

    const fresh = new PayloadStore(fx.nc);
    const report = await replayWithPayloads(runner.executionId, records, fresh);
    expect(report.chainBreaks).toEqual([]); // the records themselves are untouched
    expect(report.ok).toBe(false);
    expect(report.payloads.find((p) => p.ref === output.$ref)).toMatchObject({ ok: false, code: 'PAYLOAD_TAMPERED' });
    await expect(fresh.fetch(output)).rejects.toMatchObject({ code: 'PAYLOAD_TAMPERED' });
  });
});
