/**
 * The command line where it meets the shell (issue 9): output into a closed
 * pipe (`| head -1`) ends quietly and cleanly — no stack trace, the work
 * finished, the embedded nats-server not orphaned; Ctrl-C exits 130; a busy
 * PORT is named and nothing started is left behind; `--input @file` reads a
 * JSON or YAML file; a bad NATS_REPLICAS is refused naming the variable.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { embeddedServer, killEmbeddedServer, runCommand, startCommand } from '../support/commands.js';
import { startGate, type Gate } from '../support/gate.js';
import { useNatsServer } from '../support/nats.js';
import { REPO, until } from '../support/processes.js';

const nats = useNatsServer();
let tmp: string;
let gate: Gate;
const dataDirs: string[] = [];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-cli-shell-'));
  gate = await startGate();
});

afterAll(async () => {
  for (const dir of dataDirs) killEmbeddedServer(dir);
  await gate?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const withNats = () => ({ NATS_URL: nats.url });
function embedded(name: string): Record<string, string> {
  const dir = join(tmp, name);
  dataDirs.push(dir);
  return { SMARTSPEC_DATA_DIR: dir };
}

/** `smartspec <args>` whose reader goes away after the first chunk of output (like `| head -1`). */
function withClosedPipe(args: string[], env: Record<string, string>): Promise<{ code: number | null; stderr: string; first: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bin/smartspec.mjs', ...args], { cwd: REPO, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let first = '';
    let stderr = '';
    child.stdout.once('data', (d: Buffer) => {
      first = d.toString();
      child.stdout.destroy();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`smartspec ${args.join(' ')} did not end: ${stderr}`)); }, 60_000);
    child.once('close', (code) => { clearTimeout(timer); resolve({ code, stderr, first }); });
  });
}

describe('output into a closed pipe', () => {
  it('events <id> | head -1 on a long history (embedded server): exit 0, nothing on stderr, the server not orphaned', async () => {
    const env = embedded('pipe-events');
    const file = join(tmp, 'long.json');
    await writeFile(file, JSON.stringify({ id: 'long-history', steps: Array.from({ length: 600 }, (_, i) => ({ id: `s${i}`, type: 'transform', value: i })) }));
    expect((await runCommand(['run', file, '--id', 'long-1'], env)).code).toBe(0);
    const r = await withClosedPipe(['events', 'long-1'], env);
    expect(r.first).toMatch(/^#\d+\s+\S+\s+ExecutionStarted/);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(embeddedServer(env.SMARTSPEC_DATA_DIR), 'the embedded server outlived its last command').toBeUndefined();
  }, 60_000);

  it('resume <id> | head -1 (embedded server): the execution still completes, exit 0, quiet, and the server is not orphaned', async () => {
    const env = embedded('pipe-resume');
    const failing = join(tmp, 'pipe-failing.json');
    const fixed = join(tmp, 'pipe-fixed.json');
    await writeFile(failing, JSON.stringify({ id: 'pipe', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'fail', message: 'broken', retryable: false }] }));
    await writeFile(fixed, JSON.stringify({ id: 'pipe', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'sleep', durationMs: 700 }, { id: 'c', type: 'sleep', durationMs: 300 }, { id: 'd', type: 'transform', value: 4 }] }));
    expect((await runCommand(['run', failing, '--id', 'pipe-1'], env)).code).toBe(1);

    const r = await withClosedPipe(['resume', 'pipe-1', '--from-step', 'b', '--steps', fixed], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(embeddedServer(env.SMARTSPEC_DATA_DIR), 'the embedded server outlived its last command').toBeUndefined();

    const status = await runCommand(['status', 'pipe-1'], env);
    expect(status.stdout).toMatch(/^pipe-1\s+pipe\s+COMPLETED/m);
  }, 90_000);
});

describe('signals and ports', () => {
  it.each([['SIGINT', 130], ['SIGTERM', 143]] as const)('%s on run: exit %i, saying how to continue', async (signal, code) => {
    const key = `held-${signal}`;
    const file = join(tmp, `${key}.json`);
    await writeFile(file, JSON.stringify({ id: 'held', steps: [{ id: 'wait', type: 'http', request: { method: 'GET', url: gate.url(key) } }] }));
    const run = startCommand(['run', file, '--id', key], withNats());
    await until('the run to reach its gate', async () => gate.hits(key) === 1, 30_000);
    run.proc.kill(signal);
    const r = await run.result;
    expect(r.code).toBe(code);
    expect(r.stdout).toMatch(/interrupted/);
    expect(r.stdout).toContain(`smartspec resume ${key}`);
    expect(r.stderr).toBe('');
  }, 60_000);

  it('serve on a busy PORT: exit 2 naming PORT, and the embedded nats-server it started is stopped', async () => {
    const env = embedded('busy-port');
    const blocker: Server = createServer();
    const port = await new Promise<number>((res) => blocker.listen(0, '127.0.0.1', () => res((blocker.address() as { port: number }).port)));
    try {
      const r = await runCommand(['serve'], { ...env, PORT: String(port), LOG_LEVEL: 'warn' });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`port ${port} is already in use.*set PORT`));
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
      expect(embeddedServer(env.SMARTSPEC_DATA_DIR), 'nats-server left running').toBeUndefined();
    } finally {
      blocker.close();
    }
  }, 60_000);
});

describe('--input @file', () => {
  it('reads a YAML or a JSON file', async () => {
    const yamlFile = join(tmp, 'input.yaml');
    const jsonFile = join(tmp, 'input.json');
    await writeFile(yamlFile, 'feature: yaml-export\n');
    await writeFile(jsonFile, JSON.stringify({ feature: 'json-export' }));
    const [fromYaml, fromJson] = await Promise.all([
      runCommand(['run', 'examples/fork-join.json', '--input', `@${yamlFile}`], withNats()),
      runCommand(['run', 'examples/fork-join.json', '--input', `@${jsonFile}`], withNats()),
    ]);
    expect(fromYaml.stderr).toBe('');
    expect(fromYaml.code).toBe(0);
    expect(fromYaml.stdout).toContain('Spec for yaml-export');
    expect(fromJson.code).toBe(0);
    expect(fromJson.stdout).toContain('Spec for json-export');
  }, 60_000);

  it('a missing or unreadable file: exit 2 naming it', async () => {
    const missing = join(tmp, 'no-such-input.yaml');
    const bad = join(tmp, 'bad-input.json');
    await writeFile(bad, '{"feature": ');
    const [r1, r2] = await Promise.all([
      runCommand(['run', 'examples/fork-join.json', '--input', `@${missing}`], withNats()),
      runCommand(['run', 'examples/fork-join.json', '--input', `@${bad}`], withNats()),
    ]);
    expect(r1.code).toBe(2);
    expect(r1.stderr.trim()).toBe(`error: cannot read ${missing}: no such file`);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`--input ${bad} is not valid JSON: Unexpected end of JSON input (line 1, column 13)`);
  }, 60_000);
});

describe('NATS_REPLICAS', () => {
  it('an invalid value: exit 2 naming the variable', async () => {
    const r = await runCommand(['status', 'whatever'], { ...withNats(), NATS_REPLICAS: 'three' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/NATS_REPLICAS/);
  }, 30_000);
});
