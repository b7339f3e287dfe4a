/**
 * Graceful shutdown (issue 9): a worker or `serve` stopped with SIGTERM (how
 * containers stop) or SIGINT (Ctrl-C) while it hosts an execution mid-step.
 * It takes no more commands, lets the running step finish within
 * SMARTSPEC_SHUTDOWN_GRACE_MS, then hands the execution back at once (nak,
 * no delay): another worker continues it long before ACK_WAIT_MS, completed
 * steps are not run again, and nothing unfinished was acknowledged. Real
 * nats-server, real worker processes, steps held open by a gate the test
 * releases.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type RunningService } from '../../src/cli/service.js';
import type { LogRecord } from '../../src/log/records.js';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';
import { startGate, type Gate } from '../support/gate.js';
import { freePort, killAll, spawnCli, type Child } from '../support/processes.js';
import { http, waitForStatus } from '../support/service.js';

// Far beyond the test's deadlines: a command left to its ack wait would fail the test.
const ACK_WAIT_MS = '120000';

let storeDir: string;
let nats: NatsServer;
let edge: RunningService & { url: string };
let gate: Gate;
let common: Record<string, string>;

beforeAll(async () => {
  storeDir = await mkdtemp(join(tmpdir(), 'smartspec-shutdown-'));
  nats = await startNatsServer({ storeDir });
  gate = await startGate();
  common = { NATS_URL: nats.url, ACK_WAIT_MS, LOG_LEVEL: 'info' };
  edge = (await startService({ edge: true, worker: false }, { PATH: process.env.PATH, PORT: '0', RATE_LIMIT_MAX: '100000', ...common, LOG_LEVEL: 'silent' })) as RunningService & { url: string };
}, 40_000);

afterAll(async () => {
  await killAll();
  await edge?.stop().catch(() => undefined);
  await gate?.close();
  await nats?.stop();
  if (storeDir) await rm(storeDir, { recursive: true, force: true });
});

type Event = LogRecord & { seq: number; stepId?: string; reason?: string; attempt?: number };

/** a → b → c, each an http call to the gate; a and c answer at once, b when the test opens it. */
function definition(key: string) {
  const step = (id: string) => ({ id, type: 'http', request: { method: 'GET', url: gate.url(`${key}-${id}`) } });
  gate.open(`${key}-a`);
  gate.open(`${key}-c`);
  return { id: `shutdown-${key}`, steps: [step('a'), step('b'), step('c')] };
}

async function submit(key: string): Promise<string> {
  const r = await http(edge.url, 'POST', '/executions', { definition: definition(key) });
  expect(r.status, r.text).toBe(202);
  return r.json.executionId as string;
}

async function until(what: string, check: () => boolean, timeoutMs = 30_000, ...witnesses: Child[]): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${witnesses.map((c) => `\n--- ${c.name}:\n${c.output().slice(-4000)}`).join('')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function eventsOf(id: string): Promise<Event[]> {
  return (await http(edge.url, 'GET', `/executions/${id}/events`)).json.events as Event[];
}

/** Its exit code; a process still running after the deadline fails the test with its output. */
async function exitCode(c: Child, timeoutMs = 45_000): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${c.name} still running ${timeoutMs} ms after the signal:\n${c.output().slice(-4000)}`)), timeoutMs);
  });
  try {
    await Promise.race([c.exited, late]);
    return c.proc.exitCode;
  } finally {
    clearTimeout(timer);
  }
}

let survivorOutput = '';
let serveOutput = '';

describe('graceful shutdown of a worker hosting an execution mid-step', () => {
  it('SIGTERM: the running step finishes, the execution goes to another worker at once, exit 0', async () => {
    const first = spawnCli('first', 'worker', { ...common, SMARTSPEC_SHUTDOWN_GRACE_MS: '60000' });
    await first.waitForOutput(/worker consuming commands/, 30_000);
    const id = await submit('term');
    await until('step b to be in flight on the first worker', () => gate.hits('term-b') === 1);

    const second = spawnCli('second', 'worker', common);
    await second.waitForOutput(/worker consuming commands/, 30_000);
    first.proc.kill('SIGTERM');
    await first.waitForOutput(/shutting down/, 10_000);
    expect(first.proc.exitCode, 'it must wait for its running step').toBeNull();

    gate.open('term-b');
    expect(await exitCode(first), first.output().slice(-3000)).toBe(0);
    expect(first.output(), 'every part of the shutdown stopped in time').not.toMatch(/did not stop in time/);
    const done = await waitForStatus(edge.url, id, ['COMPLETED', 'FAILED', 'CANCELLED'], 40_000);
    expect(done.status).toBe('COMPLETED');

    for (const step of ['a', 'b', 'c']) expect(gate.hits(`term-${step}`), step).toBe(1);
    const events = await eventsOf(id);
    expect(events.filter((e) => e.type === 'ExecutionResumed'), 'nothing was in flight at the hand-over').toEqual([]);
    expect(events.filter((e) => e.type === 'StepCompleted').map((e) => e.stepId)).toEqual(['a', 'b', 'c']);
    expect(second.output()).toMatch(/continuing an execution nobody hosts/);

    second.proc.kill('SIGTERM');
    expect(await exitCode(second)).toBe(0);
  }, 120_000);

  it('SIGINT on serve, a step outlasting the grace period: handed back after it, the step re-runs elsewhere, exit 130', async () => {
    const port = await freePort();
    const serve = spawnCli('serve', 'serve', { ...common, PORT: String(port), SMARTSPEC_SHUTDOWN_GRACE_MS: '300' });
    await serve.waitForOutput(/edge listening/, 30_000);
    const id = await submit('int');
    await until('step b to be in flight on serve', () => gate.hits('int-b') === 1, 30_000, serve);

    const survivor = spawnCli('survivor', 'worker', common);
    await survivor.waitForOutput(/worker consuming commands/, 30_000);
    serve.proc.kill('SIGINT');
    expect(await exitCode(serve), serve.output().slice(-3000)).toBe(130);
    expect(serve.output(), 'every part of the shutdown stopped in time').not.toMatch(/did not stop in time/);

    await until('the survivor to run step b again', () => gate.hits('int-b') === 2, 30_000, serve, survivor);
    gate.open('int-b');
    const done = await waitForStatus(edge.url, id, ['COMPLETED', 'FAILED', 'CANCELLED'], 40_000);
    expect(done.status).toBe('COMPLETED');

    expect(gate.hits('int-a')).toBe(1);
    expect(gate.hits('int-c')).toBe(1);
    const events = await eventsOf(id);
    expect(events.filter((e) => e.type === 'ExecutionResumed').map((e) => e.reason)).toEqual(['recovery']);
    expect(events.filter((e) => e.type === 'StepStarted' && e.stepId === 'b').map((e) => e.attempt)).toEqual([1, 2]);
    survivorOutput = survivor.output();
    serveOutput = serve.output();
  }, 120_000);

  it('logs name the process: smartspec-worker for a worker, smartspec-serve for serve', () => {
    expect(survivorOutput).toContain('"service":"smartspec-worker"');
    expect(survivorOutput).not.toContain('smartspec-edge');
    expect(serveOutput).toContain('"service":"smartspec-serve"');
  });
});
