/**
 * Child processes for end-to-end tests: `node bin/smartspec.mjs <role>` with
 * its output captured, killed for sure when the test run ends, and a polling
 * helper with a deadline (tests wait on conditions, not on sleeps).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export interface Child {
  name: string;
  proc: ChildProcess;
  output(): string;
  exited: Promise<void>;
  waitForOutput(re: RegExp, timeoutMs: number): Promise<void>;
}

const children: Child[] = [];

export function spawnCli(name: string, role: 'serve' | 'edge' | 'worker', env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['bin/smartspec.mjs', role], {
    cwd: REPO,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TMPDIR: tmpdir(), HTTP_STEP_ALLOW: '127.0.0.1,::1,localhost', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const append = (d: Buffer) => { out = (out + d.toString()).slice(-200_000); };
  proc.stdout!.on('data', append);
  proc.stderr!.on('data', append);
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  const child: Child = {
    name,
    proc,
    output: () => out,
    exited,
    waitForOutput: async (re, timeoutMs) => void await until(`${name} to print ${re}`, async () => re.test(out) || (proc.exitCode !== null ? Promise.reject(new Error(`${name} exited (${proc.exitCode}): ${out.slice(-2000)}`)) : false), timeoutMs),
  };
  children.push(child);
  return child;
}

export async function killChild(c: Child, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null) return;
  c.proc.kill(signal);
  await c.exited;
}

// Last resort if the runner itself dies: no orphaned workers.
process.once('exit', () => { for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL'); });

/** Poll `check` until it gives a value; a check that throws (a server failing over) is tried again. */
export async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A loopback port free right now, for a child that binds it a moment later. Taken below the
 * kernel's ephemeral range: a port the kernel hands out (as freePort once asked it to) can be given
 * to any outgoing connection's local end in that moment, and the child then fails to bind (seen as
 * a cluster node's route port "already in use").
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    if (await bindable(port)) return port;
  }
  throw new Error(`no free loopback port found between 10000 and ${low}`);
}

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createNetServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/** Kill every child this test file started (afterAll). */
export async function killAll(): Promise<void> {
  await Promise.all(children.map((c) => killChild(c).catch(() => undefined)));
}
