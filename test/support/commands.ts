/**
 * Any `smartspec` command as a child process (`node bin/smartspec.mjs ...`),
 * for tests of the command line itself: exit code, signal, stdout and stderr
 * kept apart. Children are killed when the test run ends; the embedded
 * nats-server a data folder holds can be read and killed for cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, until } from './processes.js';

export interface Command {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited and its output is read. */
  result: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
  waitForStdout(re: RegExp, timeoutMs?: number): Promise<void>;
}

const started: Command[] = [];

/** Start `smartspec <args>` with a minimal environment plus `env` (no NATS_URL unless given). */
export function startCommand(args: string[], env: Record<string, string>): Command {
  const proc = spawn(process.execPath, ['bin/smartspec.mjs', ...args], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TMPDIR: tmpdir(), HTTP_STEP_ALLOW: '127.0.0.1,::1,localhost', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const result = new Promise<Awaited<Command['result']>>((res) => proc.once('close', (code, signal) => res({ code, signal, stdout: out, stderr: err })));
  const command: Command = {
    proc,
    stdout: () => out,
    stderr: () => err,
    result,
    waitForStdout: async (re, timeoutMs = 30_000) =>
      void (await until(`smartspec ${args.join(' ')} to print ${re}`, async () => {
        if (re.test(out)) return true;
        if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`exited (${proc.exitCode ?? proc.signalCode}): ${out.slice(-2000)}\n${err.slice(-2000)}`);
        return false;
      }, timeoutMs, 50)),
  };
  started.push(command);
  return command;
}

/** Run `smartspec <args>` to its end. */
export function runCommand(args: string[], env: Record<string, string>): Command['result'] {
  return startCommand(args, env).result;
}

process.once('exit', () => { for (const c of started) if (c.proc.exitCode === null) c.proc.kill('SIGKILL'); });

/** The embedded nats-server a data folder records (pid, url), if any. */
export function embeddedServer(dataDir: string): { pid: number; url: string } | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, 'nats-server.json'), 'utf8')) as { pid: number; url: string };
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** After a test: no nats-server of this data folder may outlive it. */
export function killEmbeddedServer(dataDir: string): void {
  const s = embeddedServer(dataDir);
  if (s && isAlive(s.pid)) process.kill(s.pid, 'SIGKILL');
}
