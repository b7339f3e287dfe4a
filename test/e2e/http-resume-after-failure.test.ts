/**
 * Resume the moment a failure shows, over real HTTP and from the CLI: a client
 * watches the execution's SSE stream and POSTs /resume as soon as
 * ExecutionFailed arrives. Its worker may not have let go of the execution by
 * then (its end is in the log before the worker has read the append's
 * answer). That must never be a 409 EXECUTION_OWNED: every resume is accepted
 * and runs to its resumed outcome.
 *
 * The window is made wide and certain: the worker here (a real Worker and
 * Engine, consuming the real command stream) reads the answer to each
 * ExecutionFailed append only once the first owner check for that execution
 * has reached NATS, as a busy worker would.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandBus } from '../../src/bus/commands.js';
import { cliExecutors } from '../../src/cli/executors.js';
import { EventLog } from '../../src/log/eventLog.js';
import { ExecutionIndex } from '../../src/registry/executionIndex.js';
import { controlSubject } from '../../src/nats/names.js';
import { Engine } from '../../src/worker/engine.js';
import { Worker } from '../../src/worker/worker.js';
import { useNatsServer } from '../support/nats.js';
import { REPO } from '../support/processes.js';
import { http, useService, waitForStatus } from '../support/service.js';
import { count, events, readSse, uniq } from './http-helpers.js';

const nats = useNatsServer();
const start = useService(nats);
let base = '';
let workerNc: NatsConnection;
let watcherNc: NatsConnection;
let worker: Worker;
let tmp = '';

/** Per execution: resolves when an owner check (a control request) for it has been seen. */
const checked = new Map<string, () => void>();
const ownerChecked = (id: string) => new Promise<void>((res) => checked.set(id, res));

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-resume-race-'));
  base = (await start({ worker: false })).url;
  watcherNc = await connect({ servers: nats.url });
  watcherNc.subscribe(controlSubject('*'), { callback: (err, msg) => { if (!err) checked.get(msg.subject.slice(controlSubject('').length))?.(); } });
  await watcherNc.flush();

  workerNc = await connect({ servers: nats.url });
  const log = await EventLog.open(workerNc);
  const lateLog = Object.create(log) as EventLog;
  lateLog.append = async (body, prev, writer) => {
    const waited = body.type === 'ExecutionFailed' ? ownerChecked(body.executionId) : undefined;
    const stored = await log.append(body, prev, writer);
    if (waited) {
      // Until the check has had time to reach this worker too (capped: a client may never ask).
      await Promise.race([waited.then(() => new Promise((r) => setTimeout(r, 200))), new Promise((r) => setTimeout(r, 5000))]);
    }
    return stored;
  };
  const engine = await Engine.create({ nc: workerNc, log: lateLog, index: await ExecutionIndex.open(workerNc), executors: cliExecutors(), owner: 'late-worker' });
  const bus = await CommandBus.open(workerNc, { consumer: { ackWaitMs: 2000 } });
  worker = new Worker({ engine, bus, logger: pino({ level: 'silent' }) });
  await worker.start();
});
afterAll(async () => {
  await worker?.stop();
  await workerNc?.close();
  await watcherNc?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const failing = (id: string) => ({
  id,
  steps: [
    { id: 'prepare', type: 'transform', value: { n: '{{input.n}}' } },
    { id: 'check', type: 'fail', message: 'check is broken' },
    { id: 'publish', type: 'transform', value: { prepared: '{{steps.prepare.output}}', checked: '{{steps.check.output}}' } },
  ],
});
const corrected = {
  steps: [
    { id: 'prepare', type: 'transform', value: { n: '{{input.n}}' } },
    { id: 'check', type: 'transform', value: { passed: true } },
    { id: 'publish', type: 'transform', value: { prepared: '{{steps.prepare.output}}', checked: '{{steps.check.output}}' } },
  ],
};

/** Start a failing execution and call `onFailed` as soon as its SSE stream shows ExecutionFailed. */
async function onFailure<T>(n: number, onFailed: (id: string) => Promise<T>): Promise<{ id: string; result: T }> {
  const r = await http(base, 'POST', '/executions', { definition: failing(uniq('resume-race')), input: { n } });
  expect(r.status, r.text).toBe(202);
  const id: string = r.json.executionId;
  let result: Promise<T> | undefined;
  const sse = await readSse(`${base}/executions/${id}/events/stream`, {
    timeoutMs: 20_000,
    onFrame: (f) => { if (f.event === 'ExecutionFailed') result = onFailed(id); },
  });
  expect(sse.ended, 'the stream ended after the failure').toBe(true);
  expect(result, 'the stream showed ExecutionFailed').toBeDefined();
  return { id, result: await result! };
}

async function expectResumedToCompletion(id: string, n: number) {
  const done = await waitForStatus(base, id, ['COMPLETED'], 30_000);
  expect(done.steps.publish.output).toEqual({ prepared: { n }, checked: { passed: true } });
  const evs = await events(base, id);
  expect(evs.map((e) => e.type).filter((t) => t.startsWith('Execution'))).toEqual(['ExecutionStarted', 'ExecutionFailed', 'ExecutionResumed', 'ExecutionCompleted']);
  expect(count(evs, 'StepStarted', 'prepare')).toBe(1);
}

describe('resume right after ExecutionFailed', () => {
  it('over HTTP, 30 executions: every POST /resume is 202 (never 409 EXECUTION_OWNED) and each completes', async () => {
    const runs = await Promise.all(Array.from({ length: 30 }, (_, n) =>
      onFailure(n, (id) => http(base, 'POST', `/executions/${id}/resume`, { fromStep: 'check', steps: corrected })),
    ));
    const refused = runs.filter((r) => r.result.status !== 202).map((r) => `${r.id}: ${r.result.status} ${r.result.json?.code}`);
    expect(refused).toEqual([]);
    for (const [n, r] of runs.entries()) await expectResumedToCompletion(r.id, n);
  }, 120_000);

  it('`smartspec resume` from the command line does the same', async () => {
    const stepsFile = join(tmp, 'corrected.json');
    await writeFile(stepsFile, JSON.stringify(corrected));
    for (let n = 100; n < 103; n++) {
      const { id, result } = await onFailure(n, (id) => runCli(['resume', id, '--from-step', 'check', '--steps', stepsFile]));
      expect(result.stdout + result.stderr).not.toMatch(/EXECUTION_OWNED|owned by/);
      expect(result.code, result.stdout + result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^COMPLETED in /m);
      await expectResumedToCompletion(id, n);
    }
  }, 120_000);
});

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['bin/smartspec.mjs', ...args], { cwd: REPO, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TMPDIR: tmpdir(), NATS_URL: nats.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => { child.kill('SIGKILL'); rej(new Error(`smartspec ${args.join(' ')} timed out\n${stdout}\n${stderr}`)); }, 30_000);
    child.on('error', rej);
    child.on('close', (code) => { clearTimeout(timer); res({ code, stdout, stderr }); });
  });
}
