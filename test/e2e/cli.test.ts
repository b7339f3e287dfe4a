/**
 * The `smartspec` CLI as a user drives it: `node bin/smartspec.mjs ...` in a
 * child process, against this file's nats-server (NATS_URL) — and once with
 * the embedded default (no NATS_URL) to show that what one command writes is
 * there for the next. Exit codes: 0 done, 1 the execution failed (or replay
 * did not verify), 2 the command itself was refused.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { useEngine } from '../support/engine.js';
import { parseDefinition } from '../../src/definition/validate.js';
import { EXECUTIONS_STREAM } from '../../src/nats/names.js';

// Each test spawns several CLI processes in a row (about 1.5 s each on an idle 2-core machine; a
// process may take 20 s on a shared, loaded one, hence the generous per-process limit below).
vi.setConfig({ testTimeout: 180_000 });

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(ROOT, 'bin/smartspec.mjs');
const nats = useNatsServer();
const fx = useEngine(nats);
let forkJoin: ReturnType<typeof parseDefinition>;
beforeAll(async () => { forkJoin = parseDefinition(await readFile(join(ROOT, 'examples/fork-join.json'), 'utf8')); });

interface Result { code: number | null; stdout: string; stderr: string }

/** At most two CLI processes at a time: each spends most of its ~1 s compiling on start. */
let running = 0;
const queue: (() => void)[] = [];
async function slot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 2) await new Promise<void>((r) => queue.push(r));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    queue.shift()?.();
  }
}

/** Run the CLI to completion. `env` replaces NATS_URL / data dir settings as given. */
function cli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<Result> {
  return slot(() => spawnCli(args, env, timeoutMs));
}

function spawnCli(args: string[], env: Record<string, string | undefined>, timeoutMs: number): Promise<Result> {
  return new Promise((res, rej) => {
    const merged: NodeJS.ProcessEnv = { ...process.env, NATS_URL: nats.url, ...env };
    for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
    const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => { child.kill('SIGKILL'); rej(new Error(`smartspec ${args.join(' ')} timed out\n${stdout}\n${stderr}`)); }, timeoutMs);
    child.on('error', rej);
    child.on('close', (code) => { clearTimeout(timer); res({ code, stdout, stderr }); });
  });
}

let tmp: string;
beforeAll(async () => { tmp = await mkdtemp(join(tmpdir(), 'smartspec-cli-')); });
afterAll(async () => { if (tmp) await rm(tmp, { recursive: true, force: true }); });

const uid = (p: string) => `${p}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

describe.concurrent('smartspec CLI (NATS_URL)', () => {
  it('run examples/fork-join.json: exit 0, prints the fork, the join and COMPLETED', async () => {
    const r = await cli(['run', 'examples/fork-join.json', '--input', '{"feature":"x"}']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^execution [0-9a-f-]{36} \(workflow spec-review\)$/m);
    expect(r.stdout).toMatch(/StepCompleted\s+draft .*fork: security, perf, legal/);
    expect(r.stdout).toMatch(/StepCompleted\s+\w+ .*join → merge/);
    expect(r.stdout).toMatch(/^COMPLETED in /m);
    expect(r.stdout).toContain('"text": "Spec for x: users can x from any device."');
    // fork before join, join before the end
    expect(r.stdout.indexOf('fork:')).toBeLessThan(r.stdout.indexOf('join'));
  });

  it('run failing.json exits 1; resume --from-step tests --steps corrected.json completes without re-running earlier steps; events, checkpoints, replay verify', async () => {
    const id = uid('release');
    const run = await cli(['run', 'examples/failing.json', '--id', id, '--input', '{"version":"1.2.3"}']);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^FAILED after .* · 3 of 5 steps$/m);
    expect(run.stdout).toContain('error: tests failed: flaky fixture');
    expect(run.stdout).toContain(`smartspec resume ${id} --from-step tests`);
    expect(run.stdout).toMatch(/StepStarted\s+tests \(attempt 2\)/); // its retry ran

    const resume = await cli(['resume', id, '--from-step', 'tests', '--steps', 'examples/corrected.json']);
    expect(resume.stderr).toBe('');
    expect(resume.code).toBe(0);
    expect(resume.stdout).toMatch(/ExecutionResumed/);
    expect(resume.stdout).toMatch(/^COMPLETED in /m);
    expect(resume.stdout).toContain('"published": "app-1.2.3.tgz"');

    const events = await cli(['events', id, '--json']);
    expect(events.code).toBe(0);
    const records = JSON.parse(events.stdout) as { seq: number; type: string; stepId?: string; hash: string; reason?: string }[];
    const starts = (step: string) => records.filter((r) => r.type === 'StepStarted' && r.stepId === step).length;
    expect(starts('build')).toBe(1);
    expect(starts('lint')).toBe(1);
    expect(starts('typecheck')).toBe(1);
    expect(starts('tests')).toBe(3); // two attempts, then the corrected step
    expect(starts('publish')).toBe(1);
    expect(records.filter((r) => r.type === 'ExecutionResumed')).toEqual([expect.objectContaining({ reason: 'resume', fromStep: 'tests' })]);
    expect(records.filter((r) => r.type === 'ExecutionFailed')).toHaveLength(1);
    expect(records.at(-1)!.type).toBe('ExecutionCompleted');
    expect(records.every((r) => /^[0-9a-f]{64}$/.test(r.hash))).toBe(true);

    const [replay, cps] = await Promise.all([cli(['replay', id]), cli(['checkpoints', id])]);
    expect(replay.code).toBe(0);
    expect(replay.stdout).toContain(`replay verified ${records.length} events`);
    expect(replay.stdout).not.toMatch(/FAIL/);
    expect(cps.code).toBe(0);
    const ids = [...cps.stdout.matchAll(/^(cp-\d+)\s/gm)].map((m) => m[1]);
    const expected = records.filter((r) => ['ExecutionStarted', 'StepCompleted', 'SignalReceived', 'ExecutionResumed'].includes(r.type)).map((r) => `cp-${r.seq}`);
    expect(ids).toEqual(expected);
    expect(cps.stdout).toMatch(/cp-\d+\s+#3\s+\S+\s+StepCompleted\s+build/);
  });

  it('replay of a tampered log (a record deleted from the stream): exit 1, "replay FAILED", naming the broken link', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({ definition: forkJoin, input: { feature: 't' } });
    expect((await runner.done).status).toBe('COMPLETED');
    const records = await fx.log.read(runner.executionId);
    await fx.log.jsm.streams.deleteMessage(EXECUTIONS_STREAM, records[3].seq);
    const r = await cli(['replay', runner.executionId]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('replay FAILED: the log does not verify');
    expect(r.stdout).toContain(`hash chain broken at #4 (stream sequence ${records[4].seq})`); // the 4th record left
  });

  // The audit must report on any tampered log; here the deletion also corrupts the checkpoint an
  // ExecutionResumed record rebuilds from, and folding the log throws before replay can report.
  it('replay of a tampered resumed history: exit 1 with the report, not exit 2 with a resume error', async () => {
    const engine = await fx.engine();
    const failing = parseDefinition(await readFile(join(ROOT, 'examples/failing.json'), 'utf8'));
    const runner = await engine.start({ definition: failing, input: { version: '9' } });
    expect((await runner.done).status).toBe('FAILED');
    const corrected = JSON.parse(await readFile(join(ROOT, 'examples/corrected.json'), 'utf8')) as unknown;
    expect((await (await engine.resume(runner.executionId, { fromStep: 'tests', steps: corrected })).done).status).toBe('COMPLETED');
    const records = await fx.log.read(runner.executionId);
    await fx.log.jsm.streams.deleteMessage(EXECUTIONS_STREAM, records[3].seq);
    const r = await cli(['replay', runner.executionId]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('replay FAILED: the log does not verify');
    expect(r.stdout).toContain(`hash chain broken at #4 (stream sequence ${records[4].seq})`); // the 4th record left
  });

  it('an invalid definition file: exit 2, naming the path and the reason', async () => {
    const file = join(tmp, 'bad.json');
    await writeFile(file, JSON.stringify({ id: 'bad', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'shell' }], parallel: [['a', 'zz']] }));
    const r = await cli(['run', file]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error: invalid definition');
    expect(r.stderr).toMatch(/steps\[1\]\.type: unknown step type 'shell'/);
  });

  it('an unknown execution id: exit 2, "not found"', async () => {
    const r = await cli(['status', 'no-such-execution']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim()).toBe("error: execution 'no-such-execution' not found");
  });
});

describe('smartspec CLI (embedded nats-server)', () => {
  it('with no NATS_URL, run then status on the same id: the data persists across commands', async () => {
    const dataDir = join(tmp, 'data');
    const env = { NATS_URL: undefined, SMARTSPEC_DATA_DIR: dataDir };
    const id = uid('embedded');
    const run = await cli(['run', 'examples/fork-join.json', '--id', id, '--input', '{"feature":"z"}'], env);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^COMPLETED in /m);
    expect(existsSync(join(dataDir, 'nats'))).toBe(true);
    // the server of that command is gone with it
    expect(existsSync(join(dataDir, 'nats-server.json'))).toBe(false);

    const status = await cli(['status', id], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^${id}\\s+spec-review\\s+COMPLETED\\s+completed$`, 'm'));
    expect(status.stdout).toMatch(/merge\s+done/);

  });
});

/**
 * Without a nats-server binary the CLI must say how to get one. The binary is
 * looked up on PATH and also at fixed paths (/usr/sbin, /usr/local/bin), so it
 * is hidden with a private mount namespace (unshare) over the directories that
 * hold it; where that is not possible the test is skipped.
 */
const FIXED = ['/usr/sbin/nats-server', '/usr/local/bin/nats-server'];
const hideDirs = FIXED.filter((f) => existsSync(f)).map((f) => dirname(f));
const canHide =
  process.platform === 'linux' &&
  !hideDirs.includes(dirname(process.execPath)) &&
  spawnSync('unshare', ['-rm', 'sh', '-c', 'true'], { stdio: 'ignore' }).status === 0;

describe('smartspec CLI without nats-server', () => {
  it.skipIf(!canHide)('one clear line naming `apt-get install nats-server` or NATS_URL, and a non-zero exit', async () => {
    const path = (process.env.PATH ?? '').split(delimiter).filter((d) => d && !existsSync(join(d, 'nats-server')) && !hideDirs.includes(d)).join(delimiter);
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: [dirname(process.execPath), path].join(delimiter), SMARTSPEC_DATA_DIR: join(tmp, 'no-server') };
    delete env.NATS_URL;
    delete env.NATS_SERVER_BIN;
    const mounts = hideDirs.map((d) => `mount -t tmpfs none ${d}`).join(' && ');
    const script = `${mounts ? `${mounts} && ` : ''}exec "${process.execPath}" "${BIN}" run examples/fork-join.json`;
    const r = spawnSync('unshare', ['-rm', 'sh', '-c', script], { cwd: ROOT, env, encoding: 'utf8', timeout: 20_000 });
    expect(r.status).not.toBe(0);
    expect(r.status).not.toBeNull();
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/nats-server not found/);
    expect(lines[0]).toMatch(/apt-get install nats-server/);
    expect(lines[0]).toMatch(/NATS_URL/);
    expect(r.stdout).toBe('');
  });
});
