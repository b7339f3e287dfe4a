/**
 * The soak's child processes: the nats-server (killed and restarted on the
 * same port with the same store) and the `node bin/smartspec.mjs edge|worker`
 * processes (killed and restarted). Each child's output goes to its own log
 * file in the run's folder (appended across restarts, with a marker line), so
 * a defect the soak finds can be looked up afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNatsServer, type NatsServer } from '../src/nats/server.js';

export const REPO = resolve(fileURLToPath(new URL('..', import.meta.url)));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A loopback port free right now. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

/** One `node bin/smartspec.mjs <role>` process, restartable under the same name and environment. */
export class CliProcess {
  private proc?: ChildProcess;
  private exited?: Promise<void>;
  private readonly logFile: WriteStream;
  /** Set while the soak itself stops or kills it: any other exit after start-up is a crash. */
  private stopping = false;
  starts = 0;
  /** Exits nobody asked for, after the process had said it serves. */
  readonly crashes: string[] = [];
  /** Down after a crash, not yet started again. */
  crashed = false;

  constructor(
    readonly name: string,
    private readonly role: 'edge' | 'worker',
    private readonly env: Record<string, string>,
    logDir: string,
    /** Printed once the process serves (pino's message). */
    private readonly readyLine: RegExp,
  ) {
    this.logFile = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
  }

  get pid(): number | undefined { return this.running ? this.proc?.pid : undefined; }
  get running(): boolean { return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null; }

  /** Start and wait until it says it serves; a process that exits first is an error. */
  async start(timeoutMs = 60_000): Promise<void> {
    this.starts++;
    this.logFile.write(`\n===== soak: start #${this.starts} of ${this.name} at ${new Date().toISOString()} =====\n`);
    const proc = spawn(process.execPath, ['bin/smartspec.mjs', this.role], {
      cwd: REPO,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}), ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    this.stopping = false;
    this.crashed = false;
    let recent = '';
    let ready = false;
    this.exited = new Promise<void>((res) =>
      proc.once('exit', (code, signal) => {
        if (ready && !this.stopping) {
          this.crashed = true;
          this.crashes.push(`${this.name} exited by itself (${code ?? signal}) at ${new Date().toISOString()}`);
          this.logFile.write(`\n===== soak: ${this.name} exited by itself (${code ?? signal}) =====\n`);
        }
        res();
      }),
    );
    const onData = (d: Buffer) => {
      this.logFile.write(d);
      if (!ready) {
        recent = (recent + d.toString()).slice(-8000);
        ready = this.readyLine.test(recent);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    const deadline = Date.now() + timeoutMs;
    while (!ready) {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${this.name} exited during start-up (${proc.exitCode ?? proc.signalCode}): ${recent.slice(-1500)}`);
      if (Date.now() > deadline) {
        await this.kill('SIGKILL'); // not left running beside the next attempt
        throw new Error(`${this.name} did not print ${this.readyLine} within ${timeoutMs} ms: ${recent.slice(-1500)}`);
      }
      await sleep(50);
    }
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running) return;
    this.logFile.write(`\n===== soak: ${signal} to ${this.name} at ${new Date().toISOString()} =====\n`);
    this.stopping = true;
    this.proc!.kill(signal);
    await this.exited;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; false when it needed the SIGKILL. */
  async stop(graceMs = 10_000): Promise<boolean> {
    if (!this.running) return true;
    this.stopping = true;
    this.proc!.kill('SIGTERM');
    let graceful = true;
    const timer = setTimeout(() => { graceful = false; this.proc?.kill('SIGKILL'); }, graceMs);
    await this.exited;
    clearTimeout(timer);
    return graceful;
  }

  /** Last resort (the soak itself is exiting): no orphans. */
  killNow(): void {
    this.stopping = true;
    if (this.running) this.proc!.kill('SIGKILL');
  }

  async closeLog(): Promise<void> {
    await new Promise<void>((res) => this.logFile.end(() => res()));
  }
}

/** The nats-server: one port and one store for the whole run, so a restart is the same server to its clients. */
export class NatsProcess {
  private server?: NatsServer;
  starts = 0;

  private constructor(private readonly storeDir: string, private readonly logFile: string, readonly port: number) {}

  static async start(storeDir: string, logDir: string): Promise<NatsProcess> {
    const logFile = join(logDir, 'nats-server.log');
    const first = await startNatsServer({ storeDir, logFile });
    const nats = new NatsProcess(storeDir, logFile, first.port);
    nats.server = first;
    nats.starts = 1;
    return nats;
  }

  get url(): string { return `nats://127.0.0.1:${this.port}`; }
  get running(): boolean { return !!this.server && this.server.process.exitCode === null && this.server.process.signalCode === null; }

  async kill(): Promise<void> {
    await this.server?.kill();
  }

  /** Start again on the same port and store; the port may take a moment to be free again. */
  async restart(): Promise<void> {
    let last: unknown;
    for (let i = 0; i < 20; i++) {
      try {
        this.server = await startNatsServer({ storeDir: this.storeDir, logFile: this.logFile, port: this.port });
        this.starts++;
        return;
      } catch (err) {
        last = err;
        await sleep(500);
      }
    }
    throw new Error(`nats-server did not restart on port ${this.port}: ${(last as Error).message}`);
  }

  async stop(): Promise<void> {
    await this.server?.stop();
  }

  killNow(): void {
    if (this.running) this.server!.process.kill('SIGKILL');
  }
}
