/**
 * Reads leave nothing behind on the server: every history read (GET /events,
 * GET /executions/:id) and every SSE stream (ended by the server, or dropped by
 * its client mid-stream or before it got going) reads the log through a
 * JetStream consumer, and that consumer must be gone once the read is done,
 * not linger until the server's inactivity timeout (5 minutes).
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXECUTIONS_STREAM } from '../../src/nats/names.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';
import { REPO } from '../support/processes.js';
import { readSse, uniq, until, waitForEvent } from './http-helpers.js';

const nats = useNatsServer();
const start = useService(nats);
let base = '';
let nc: NatsConnection;
let jsm: JetStreamManager;
beforeAll(async () => {
  base = (await start()).url;
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await nc?.close();
});

const consumerCount = async () => (await jsm.streams.info(EXECUTIONS_STREAM)).state.consumer_count;
/** The count once earlier reads' consumers (deleted without waiting) are gone: the same twice, 300 ms apart. */
async function settledCount(): Promise<number> {
  let last = await consumerCount();
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 300));
    const now = await consumerCount();
    if (now === last) return now;
    last = now;
  }
  return last;
}
/** Consumers on every stream (the log, the command queue, the KV buckets). */
async function allConsumers(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of await jsm.streams.list().next()) out[s.config.name] = s.state.consumer_count;
  return out;
}

async function submit(definition: unknown): Promise<string> {
  const r = await http(base, 'POST', '/executions', { definition, input: {} });
  expect(r.status, r.text).toBe(202);
  return r.json.executionId as string;
}

/** Opens the SSE stream, waits for its first record, then drops the connection. */
async function connectThenDrop(id: string): Promise<void> {
  const controller = new AbortController();
  const res = await fetch(`${base}/executions/${id}/events/stream`, { signal: controller.signal, headers: { accept: 'text/event-stream' } });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!text.includes('event: ExecutionStarted')) {
    const { done, value } = await reader.read();
    if (done) throw new Error('the stream ended before its first record');
    text += decoder.decode(value, { stream: true });
  }
  controller.abort();
}

/** Drops the connection right after sending the request: the edge may not even have set the stream up. */
async function dropAtOnce(id: string): Promise<void> {
  const controller = new AbortController();
  const pending = fetch(`${base}/executions/${id}/events/stream`, { signal: controller.signal }).catch(() => undefined);
  setTimeout(() => controller.abort(), 1);
  await pending;
}

describe('reads release their JetStream consumers', () => {
  it('history reads, SSE streams that end, and SSE clients that disconnect: the consumer count returns to its baseline', async () => {
    const done = await submit({ id: uniq('cleanup-done'), steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'transform', value: 2 }] });
    const waiting = await submit({ id: uniq('cleanup-wait'), steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'gate', type: 'signal' }] });
    await waitForStatus(base, done, ['COMPLETED']);
    await waitForStatus(base, waiting, ['WAITING']);
    await waitForEvent(base, waiting, (e) => e.type === 'StepStarted' && e.stepId === 'gate', 'the gate to wait');
    // The setup's own reads may still hold consumers (before the fix): start from a settled count.
    const baseline = await settledCount();

    const N = 25;
    for (let i = 0; i < N; i++) {
      expect((await http(base, 'GET', `/executions/${done}/events`)).status).toBe(200);
      expect((await http(base, 'GET', `/executions/${waiting}`)).status).toBe(200);
      expect((await http(base, 'GET', `/executions/${done}/checkpoints`)).status).toBe(200);
    }
    // Streams of an ended execution: the server sends everything and ends them.
    const ended = await Promise.all(Array.from({ length: N }, () => readSse(`${base}/executions/${done}/events/stream`)));
    for (const r of ended) expect(r.ended).toBe(true);

    // Streams of a waiting execution stay open: while they are, they hold consumers (the count measures them) ...
    const held = Array.from({ length: N }, () => new AbortController());
    const open = held.map((c) => fetch(`${base}/executions/${waiting}/events/stream`, { signal: c.signal }));
    await until('the open streams to hold consumers', async () => ((await consumerCount()) >= baseline + N ? true : undefined), 20_000);
    // ... until their clients go away.
    for (const c of held) c.abort();
    await Promise.allSettled(open);
    await Promise.all(Array.from({ length: N }, () => connectThenDrop(waiting)));
    await Promise.all(Array.from({ length: N }, () => dropAtOnce(waiting)));

    let last = -1;
    await until(`the consumer count to return to ${baseline}`, async () => ((last = await consumerCount()) <= baseline ? true : undefined), 20_000, 200).catch(() => {
      throw new Error(`${last} consumers on ${EXECUTIONS_STREAM} after the reads, against ${baseline} before them`);
    });
    expect(last).toBeLessThanOrEqual(baseline);
  });

  it('the CLI\'s reads (status, events, checkpoints): no consumer left behind once the command exits', async () => {
    const id = await submit({ id: uniq('cleanup-cli'), steps: [{ id: 'a', type: 'transform', value: 1 }] });
    await waitForStatus(base, id, ['COMPLETED']);
    const baseline = await settledCount();
    for (const command of ['status', 'events', 'checkpoints']) {
      const { code, output } = await runCli([command, id]);
      expect(code, output).toBe(0);
      expect(output).toContain(command === 'status' ? 'COMPLETED' : 'ExecutionStarted');
    }
    // The commands have exited: what they read through must be gone, not waiting out its inactivity timeout.
    expect(await settledCount()).toBe(baseline);
  });
});

describe('other reads release their consumers too', () => {
  it('resumes (accepted, and refused after reading the log and snapshots) and workflow listings: no consumer left on any stream', async () => {
    const failing = { id: uniq('cleanup-resume'), steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'check', type: 'fail', message: 'broken' }] };
    const fixed = { steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'check', type: 'transform', value: 'fixed' }] };
    const ids = await Promise.all(Array.from({ length: 5 }, () => submit(failing)));
    for (const id of ids) await waitForStatus(base, id, ['FAILED']);
    const baseline = await allConsumers();

    for (const id of ids) expect((await http(base, 'POST', `/executions/${id}/resume`, { fromStep: 'check', steps: fixed })).status).toBe(202);
    for (const id of ids) await waitForStatus(base, id, ['COMPLETED']);
    // Refused (nothing to resume), but only after the log and the snapshots were read.
    for (let i = 0; i < 10; i++) expect((await http(base, 'POST', `/executions/${ids[0]}/resume`)).status).toBe(409);
    // Listing the registered workflows reads the keys of their bucket.
    const wf = uniq('cleanup-wf');
    expect((await http(base, 'POST', '/workflows', { id: wf, steps: [{ id: 'a', type: 'transform', value: 1 }] })).status).toBe(201);
    for (let i = 0; i < 10; i++) {
      const listed = await http(base, 'GET', '/workflows');
      expect(listed.status).toBe(200);
      expect(listed.json.workflows).toContainEqual(expect.objectContaining({ id: wf, version: 1, steps: 1 }));
    }

    let now: Record<string, number> = {};
    await until('every stream\'s consumer count to return to its baseline', async () => {
      now = await allConsumers();
      return Object.entries(now).every(([name, n]) => n <= (baseline[name] ?? 0)) ? true : undefined;
    }, 20_000, 200).catch(() => {
      throw new Error(`consumers after the resumes ${JSON.stringify(now)}, before them ${JSON.stringify(baseline)}`);
    });
  });
});

function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['bin/smartspec.mjs', ...args], { cwd: REPO, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TMPDIR: tmpdir(), NATS_URL: nats.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => { child.kill('SIGKILL'); rej(new Error(`smartspec ${args.join(' ')} timed out\n${output}`)); }, 30_000);
    child.on('error', rej);
    child.on('close', (code) => { clearTimeout(timer); res({ code, output }); });
  });
}
