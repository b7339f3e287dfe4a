/**
 * Starts a local nats-server child process with JetStream on a free loopback
 * port and its own store directory. Used by the CLI's embedded default, by the
 * test harness and by the benchmarks, so all three run the same way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NatsServerNotFoundError, SmartSpecError } from '../errors.js';

export const REPO_NATS_CONF = resolve(fileURLToPath(new URL('../../nats.conf', import.meta.url)));

export interface NatsServerOptions {
  /** JetStream store directory (created if missing). */
  storeDir: string;
  /** Config file; defaults to the repository's nats.conf. */
  configFile?: string;
  /** Fixed port; default: a free one chosen by the server. */
  port?: number;
  /** Extra command-line arguments (e.g. cluster settings). */
  args?: string[];
  /** Extra environment for the server: values a config references as $NAME (passwords). */
  env?: Record<string, string>;
  /** Where the server writes its log; default: discarded. */
  logFile?: string;
  /**
   * Run in its own session, outliving this process (the shared embedded
   * server); its stderr goes to this file instead of a pipe to us.
   */
  detached?: { stderrFile: string };
}

export interface NatsServer {
  url: string;
  port: number;
  pid: number;
  process: ChildProcess;
  stop(): Promise<void>;
  /** SIGKILL, for crash tests. */
  kill(): Promise<void>;
}

/** The nats-server binary: $NATS_SERVER_BIN, then PATH, then the Debian location. */
export function findNatsServerBinary(): string {
  // An explicit choice is not second-guessed: a wrong NATS_SERVER_BIN is an error, not a fallback.
  if (process.env.NATS_SERVER_BIN) {
    if (existsSync(process.env.NATS_SERVER_BIN)) return process.env.NATS_SERVER_BIN;
    throw new NatsServerNotFoundError();
  }
  const candidates = [...(process.env.PATH ?? '').split(':').map((d) => join(d, 'nats-server')), '/usr/sbin/nats-server', '/usr/local/bin/nats-server'];
  for (const c of candidates) if (existsSync(c)) return c;
  throw new NatsServerNotFoundError();
}

export async function startNatsServer(options: NatsServerOptions): Promise<NatsServer> {
  const bin = findNatsServerBinary();
  const storeDir = resolve(options.storeDir);
  const portsDir = join(storeDir, 'ports');
  await mkdir(portsDir, { recursive: true });
  for (const f of await readdir(portsDir)) await rm(join(portsDir, f), { force: true });

  const args = [
    '-c', options.configFile ?? REPO_NATS_CONF,
    '-a', '127.0.0.1',
    '-p', String(options.port ?? -1),
    '-js',
    '--store_dir', storeDir,
    '--ports_file_dir', portsDir,
    ...(options.logFile ? ['-l', options.logFile] : []),
    ...(options.args ?? []),
  ];
  const stderrFd = options.detached ? openSync(options.detached.stderrFile, 'w') : undefined;
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', stderrFd ?? 'pipe'], detached: Boolean(options.detached), env: options.env ? { ...process.env, ...options.env } : process.env });
  if (stderrFd !== undefined) closeSync(stderrFd);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
  const stderrText = () => (options.detached ? readTail(options.detached.stderrFile) : stderr);
  let exited = false;
  const exitedPromise = new Promise<void>((res) => child.once('exit', () => { exited = true; res(); }));

  const port = await waitForPort(portsDir, child.pid!, () => exited, stderrText);
  if (options.detached) child.unref(); // not waited for: it belongs to no single process
  const url = `nats://127.0.0.1:${port}`;
  const stopWith = async (signal: NodeJS.Signals) => {
    if (exited) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exitedPromise;
    clearTimeout(timer);
  };
  return { url, port, pid: child.pid!, process: child, stop: () => stopWith('SIGTERM'), kill: () => stopWith('SIGKILL') };
}

async function waitForPort(portsDir: string, pid: number, exited: () => boolean, stderr: () => string): Promise<number> {
  const file = join(portsDir, `nats-server_${pid}.ports`);
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (exited()) throw new SmartSpecError('NATS_SERVER_FAILED', `nats-server exited during start-up: ${stderr().trim() || 'no output'}`);
    try {
      const ports = JSON.parse(await readFile(file, 'utf8')) as { nats?: string[] };
      const first = ports.nats?.[0];
      if (first) return Number(new URL(first).port);
    } catch {
      // not written yet
    }
    await sleep(20);
  }
  throw new SmartSpecError('NATS_SERVER_FAILED', `nats-server did not report its port within 15 s: ${stderr().trim()}`);
}

function readTail(file: string): string {
  try {
    return readFileSync(file, 'utf8').slice(-4000);
  } catch {
    return '';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
