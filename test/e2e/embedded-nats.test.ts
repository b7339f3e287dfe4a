/**
 * The embedded nats-server (no NATS_URL) is one per data folder and belongs
 * to no single command: commands of the same folder share it, it stops when
 * the last of them has gone — never under a command still using it — and a
 * command killed with SIGKILL does not keep it alive for good. Real commands
 * (`node bin/smartspec.mjs ...`), each step held open by a gate the test
 * releases, so which command ends first is decided, not timed.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedServer, isAlive, killEmbeddedServer, runCommand, startCommand, type Command } from '../support/commands.js';
import { startGate, type Gate } from '../support/gate.js';
import { freePort, until } from '../support/processes.js';
import { http, waitForStatus } from '../support/service.js';

let tmp: string;
let gate: Gate;
const dataDirs: string[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-embedded-'));
  gate = await startGate();
});

afterAll(async () => {
  for (const dir of dataDirs) killEmbeddedServer(dir);
  await gate?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

let n = 0;
function freshDataDir(): Record<string, string> {
  const dir = join(tmp, `data-${++n}`);
  dataDirs.push(dir);
  return { SMARTSPEC_DATA_DIR: dir, LOG_LEVEL: 'warn' };
}

/** A workflow whose one http step waits at the gate `key`. */
async function gatedWorkflow(key: string): Promise<string> {
  const file = join(tmp, `${key}.json`);
  await writeFile(file, JSON.stringify({ id: `gated-${key}`, steps: [{ id: 'first', type: 'transform', value: 1 }, { id: 'held', type: 'http', request: { method: 'GET', url: gate.url(key) } }, { id: 'last', type: 'transform', value: 2 }] }));
  return file;
}

/** The embedded server of a data folder is gone: no state file, and its process has exited. */
async function serverStopped(dir: string, pid: number): Promise<void> {
  await until(`the nats-server of ${dir} to stop`, async () => !isAlive(pid) && embeddedServer(dir) === undefined, 15_000);
}

async function startServe(env: Record<string, string>): Promise<{ serve: Command; url: string }> {
  const port = await freePort();
  const serve = startCommand(['serve'], { ...env, PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  await until('serve to answer /readyz', async () => {
    if (serve.proc.exitCode !== null) throw new Error(`serve exited (${serve.proc.exitCode}): ${serve.stdout()}${serve.stderr()}`);
    return (await fetch(`${url}/readyz`).then((r) => r.status, () => 0)) === 200;
  }, 30_000, 100);
  return { serve, url };
}

describe('one embedded nats-server per data folder', () => {
  it('two concurrent runs: the first to end leaves the server to the second, which completes; the last one stops it', async () => {
    const env = freshDataDir();
    const first = startCommand(['run', await gatedWorkflow('two-1'), '--id', 'two-1'], env);
    await until('the first run to reach its gate', async () => gate.hits('two-1') === 1, 30_000);
    const second = startCommand(['run', await gatedWorkflow('two-2'), '--id', 'two-2'], env);
    await until('the second run to reach its gate', async () => gate.hits('two-2') === 1, 30_000);
    const server = embeddedServer(env.SMARTSPEC_DATA_DIR)!;
    expect(server).toBeDefined();

    gate.open('two-1');
    const r1 = await first.result;
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    expect(isAlive(server.pid), 'the server stopped while the second run used it').toBe(true);

    gate.open('two-2');
    const r2 = await second.result;
    expect(r2.stderr).toBe('');
    expect(r2.stdout).toMatch(/^COMPLETED in /m);
    expect(r2.code).toBe(0);
    await serverStopped(env.SMARTSPEC_DATA_DIR, server.pid);
  }, 90_000);

  it('three commands starting together on a fresh data folder share one server, and it is gone after them', async () => {
    const env = freshDataDir();
    const runs = await Promise.all([1, 2, 3].map((i) => runCommand(['run', 'examples/fork-join.json', '--id', `together-${i}`, '--input', '{"feature":"t"}'], env)));
    for (const r of runs) {
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    expect(embeddedServer(env.SMARTSPEC_DATA_DIR)).toBeUndefined();
    const status = await runCommand(['status', 'together-2'], env);
    expect(status.stdout).toMatch(/^together-2\s+spec-review\s+COMPLETED/m);
  }, 90_000);

  it('a serve started during a run keeps working once the run has ended', async () => {
    const env = freshDataDir();
    const run = startCommand(['run', await gatedWorkflow('beside'), '--id', 'beside'], env);
    await until('the run to reach its gate', async () => gate.hits('beside') === 1, 30_000);
    const { serve, url } = await startServe(env);
    const server = embeddedServer(env.SMARTSPEC_DATA_DIR)!;

    gate.open('beside');
    expect((await run.result).code).toBe(0);

    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const submitted = await http(url, 'POST', '/executions', { definition: { id: 'after-run', steps: [{ id: 'a', type: 'transform', value: { ok: true } }] } });
    expect(submitted.status, submitted.text).toBe(202);
    expect((await waitForStatus(url, submitted.json.executionId, ['COMPLETED', 'FAILED'], 20_000)).status).toBe('COMPLETED');
    // What the run recorded is there for serve too.
    expect((await waitForStatus(url, 'beside', ['COMPLETED'], 20_000)).status).toBe('COMPLETED');

    serve.proc.kill('SIGTERM');
    expect((await serve.result).code).toBe(0);
    await serverStopped(env.SMARTSPEC_DATA_DIR, server.pid);
  }, 90_000);

  it('a SIGKILLed command does not keep the server for good: the next command reuses it and, as the last one, stops it', async () => {
    const env = freshDataDir();
    const { serve } = await startServe(env);
    const server = embeddedServer(env.SMARTSPEC_DATA_DIR)!;
    serve.proc.kill('SIGKILL');
    await serve.result;
    expect(isAlive(server.pid), 'the server must not die with the command that started it').toBe(true);

    const status = await runCommand(['nats', 'status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(server.url);
    expect(status.stdout).toMatch(/no command uses it/);

    const run = await runCommand(['run', 'examples/fork-join.json', '--input', '{"feature":"k"}'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^COMPLETED in /m);
    await serverStopped(env.SMARTSPEC_DATA_DIR, server.pid);
  }, 90_000);

  it('smartspec nats stop refuses while a command uses the server (naming it) and stops an unused one', async () => {
    const env = freshDataDir();
    const { serve, url } = await startServe(env);
    const server = embeddedServer(env.SMARTSPEC_DATA_DIR)!;

    const status = await runCommand(['nats', 'status'], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`pid ${serve.proc.pid}`);
    expect(status.stdout).toMatch(/serve/);

    const refused = await runCommand(['nats', 'stop'], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`pid ${serve.proc.pid}`);
    expect(isAlive(server.pid)).toBe(true);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);

    serve.proc.kill('SIGKILL');
    await serve.result;
    const stopped = await runCommand(['nats', 'stop'], env);
    expect(stopped.stderr).toBe('');
    expect(stopped.code).toBe(0);
    await serverStopped(env.SMARTSPEC_DATA_DIR, server.pid);

    const none = await runCommand(['nats', 'status'], env);
    expect(none.code).toBe(0);
    expect(none.stdout).toMatch(/not running/);
  }, 90_000);
});
