/**
 * Crash recovery as a user meets it: `smartspec run` in a child process is
 * SIGKILLed in the middle of a step; `smartspec resume <id>` from a new process
 * finishes the execution without repeating the side effects of completed steps
 * (counted by a real HTTP server the steps call). And while a run is alive, a
 * resume from another process is refused, naming the live owner.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { indexOf, stepEvents, types, useEngine } from '../support/engine.js';
import { replayExecution } from '../../src/log/replay.js';
import { loadExecution, summarize } from '../../src/log/views.js';
import { Engine } from '../../src/worker/engine.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/smartspec.mjs');
const nats = useNatsServer();
const fx = useEngine(nats);

/** The outside world: counts requests per path. */
const hits = new Map<string, number>();
/** Held requests, by path: call to answer. */
const held = new Map<string, () => void>();
let server: Server;
let base = '';
let tmp = '';
beforeAll(async () => {
  server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const answer = () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ path, n: hits.get(path) }));
    // /<tag>/hold is answered only when the test releases it: a step that lasts exactly as long as needed
    if (path.endsWith('/hold')) held.set(path, answer);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-crash-'));
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface Proc { child: ChildProcess; stdout: () => string; stderr: () => string; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }

function smartspec(args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, NATS_URL: nats.url }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('close', (code, signal) => r({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exit };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Wait until the execution's log shows StepStarted for the step. */
const stepStarted = (id: string, stepId: string) =>
  until(`StepStarted ${stepId}`, async () => {
    const records = await fx.log.read(id);
    return indexOf(records, 'StepStarted', stepId) >= 0 ? records : undefined;
  });

/** a → {b, c} → slow (sleep) → d: every http step calls /<tag>/<step>. */
async function definitionFile(tag: string, sleepMs: number): Promise<string> {
  const http = (id: string) => ({ id, type: 'http', request: { method: 'POST', url: `${base}/${tag}/${id}`, body: { step: id } } });
  const file = join(tmp, `${tag}.json`);
  await writeFile(file, JSON.stringify({
    id: `crash-${tag}`,
    steps: [http('a'), http('b'), http('c'), { id: 'slow', type: 'sleep', durationMs: sleepMs }, http('d')],
    parallel: [['b', 'c']],
  }));
  return file;
}

const hitsOf = (tag: string) => Object.fromEntries(['a', 'b', 'c', 'd'].map((s) => [s, hits.get(`/${tag}/${s}`) ?? 0]));

describe.concurrent('crash recovery', () => {
  it('SIGKILL during a sleep; `resume <id>` finishes it: completed steps are not repeated, the sleep ends at its recorded wake time', async () => {
    const tag = `kill${process.pid}`;
    const id = `crash-${tag}`;
    const run = smartspec(['run', await definitionFile(tag, 1500), '--id', id]);
    await stepStarted(id, 'slow');
    run.child.kill('SIGKILL');
    expect(await run.exit).toEqual({ code: null, signal: 'SIGKILL' });

    // what the dead process left: the sleep started, nothing after it; no live owner
    const left = await fx.log.read(id);
    expect(left.at(-1)!.record).toMatchObject({ type: 'StepStarted', stepId: 'slow' });
    expect(hitsOf(tag)).toEqual({ a: 1, b: 1, c: 1, d: 0 });
    const probe = await Engine.create({ nc: fx.nc, log: fx.log });
    expect(await probe.liveOwner(id)).toBeUndefined();
    await probe.close();
    // A sleep is a durable timer: the execution waits for it (WAITING), its wake time recorded.
    expect(summarize(await loadExecution(fx.log, id))).toMatchObject({ status: 'WAITING', steps: { slow: { phase: 'waiting' }, d: { phase: 'pending' } } });
    const wakeAt = (left.at(-1)!.record as { wakeAt?: string }).wakeAt!;

    const resume = smartspec(['resume', id]);
    const { code } = await resume.exit;
    expect(resume.stderr()).toBe('');
    expect(code).toBe(0);
    expect(resume.stdout()).toMatch(/^COMPLETED in /m);

    // every http step hit exactly once, across both processes
    expect(hitsOf(tag)).toEqual({ a: 1, b: 1, c: 1, d: 1 });
    const records = await fx.log.read(id);
    const resumedAt = indexOf(records, 'ExecutionResumed');
    expect(resumedAt).toBe(left.length); // right after what the dead process wrote
    expect(records[resumedAt].record).toMatchObject({ type: 'ExecutionResumed', reason: 'recovery', checkpointSeq: left.at(-1)!.seq, state: { running: { slow: 'waiting' } } });
    // The sleep was not started again: it ended at the wake time recorded before the kill.
    expect(stepEvents(records, 'StepStarted')).toEqual(['a', 'b', 'c', 'slow', 'd']);
    expect(Date.parse(records[indexOf(records, 'StepCompleted', 'slow')].record.at)).toBeGreaterThanOrEqual(Date.parse(wakeAt));
    expect(types(records).at(-1)).toBe('ExecutionCompleted');
    expect((records.at(-1)!.record as { output?: unknown }).output).toMatchObject({ status: 200, body: { path: `/${tag}/d`, n: 1 } });

    const report = replayExecution(id, records);
    expect(report.chainBreaks).toEqual([]);
    expect(report.events.filter((e) => !e.ok)).toEqual([]);
    expect(report.ok).toBe(true);
  });

  it('while `run` is alive, `resume <id>` from another process is refused naming the live owner, and the run continues', async () => {
    const tag = `live${process.pid}`;
    const id = `crash-${tag}`;
    // the long step is an http call that the test server holds open until the refusal has been seen
    const http = (stepId: string) => ({ id: stepId, type: 'http', request: { url: `${base}/${tag}/${stepId}` } });
    const file = join(tmp, `${tag}.json`);
    await writeFile(file, JSON.stringify({ id: `crash-${tag}`, steps: [http('a'), http('b'), http('c'), http('hold'), http('d')], parallel: [['b', 'c']] }));
    const run = smartspec(['run', file, '--id', id]);
    await until('the held request', async () => (held.has(`/${tag}/hold`) ? true : undefined));
    const before = await fx.log.read(id);

    const resume = smartspec(['resume', id]);
    const refused = await resume.exit;
    expect(refused.code).toBe(2);
    const stderr = resume.stderr().trim();
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stderr).toContain(`execution '${id}' is owned by live process smartspec-cli pid ${run.child.pid}`);
    expect(stderr).toMatch(/it will continue there/);
    expect(resume.stdout()).toBe('');
    // the refusal wrote nothing
    expect(await fx.log.read(id)).toEqual(before);

    // the run was not disturbed: release its step and it completes
    held.get(`/${tag}/hold`)!();
    const ran = await run.exit;
    expect(run.stderr()).toBe('');
    expect(ran.code).toBe(0);
    expect(run.stdout()).toMatch(/^COMPLETED in /m);
    expect(hitsOf(tag)).toEqual({ a: 1, b: 1, c: 1, d: 1 });
    expect(hits.get(`/${tag}/hold`)).toBe(1);
    const records = await fx.log.read(id);
    expect(indexOf(records, 'ExecutionResumed')).toBe(-1);
    expect(stepEvents(records, 'StepStarted')).toEqual(['a', 'b', 'c', 'hold', 'd']);
    expect(replayExecution(id, records).ok).toBe(true);
  });
});
