/**
 * A `smartspec worker` child process on the bench's nats-server, as users run
 * it, and what the bench reads of it: its resident memory (/proc), and the
 * end of each execution it runs (seen on the log).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { EXECUTION_SUBJECTS } from '../../src/nats/names.js';
import { BENCH_DIR } from './peers.js';
import type { BenchContext } from './section.js';

const BIN = resolve(BENCH_DIR, '..', 'bin', 'smartspec.mjs');
const GC_ON_SIGNAL = resolve(BENCH_DIR, 'lib', 'gcOnSignal.cjs');

export interface WorkerProcess {
  pid: number;
  /** Resolves once it consumes commands (a signal before its preload is installed would kill it). */
  ready: Promise<void>;
  /** Resident set size now, in MiB (VmRSS). */
  rssMiB(): number;
  /** The same after full garbage collections: what the process retains. */
  retainedRssMiB(): Promise<number>;
  stop(): Promise<void>;
}

export function startWorker(ctx: BenchContext, env: Record<string, string> = {}): WorkerProcess {
  const child = spawn(process.execPath, ['--expose-gc', '--require', GC_ON_SIGNAL, BIN, 'worker'], { env: { ...process.env, NATS_URL: ctx.natsUrl, LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let stopping = false;
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  let stdout = '';
  const ready = new Promise<void>((res, rej) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout = (stdout + d.toString()).slice(-2000);
      if (stdout.includes('worker consuming commands')) res();
    });
    child.once('exit', (code, signal) => rej(new Error(`the worker exited (${code ?? signal}) before consuming commands: ${stderr}`)));
  });
  ready.catch(() => undefined);
  child.once('exit', (code, signal) => {
    if (!stopping) ctx.log(`worker exited (${code ?? signal}): ${stderr}`);
  });
  const rssMiB = () => {
    const kib = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
    if (kib === undefined) throw new Error('the worker has no VmRSS (gone?)');
    return Number(kib) / 1024;
  };
  return {
    pid: child.pid!,
    rssMiB,
    ready,
    async retainedRssMiB() {
      await ready;
      // V8 shrinks its heap (and gives the pages back) only after several collections a while
      // apart: eight, a second apart, and the lowest reading.
      let lowest = Infinity;
      for (let i = 0; i < 8; i++) {
        child.kill('SIGUSR2');
        await new Promise((r) => setTimeout(r, 1000));
        lowest = Math.min(lowest, rssMiB());
      }
      return lowest;
    },
    stop() {
      stopping = true;
      return new Promise<void>((res) => {
        if (child.exitCode !== null || child.signalCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      });
    },
  };
}

/** Resolves an execution's promise with the type of the record that ends it, as it is appended to the log. */
export class EndWatcher {
  private static readonly END_TYPES = new Set(['ExecutionCompleted', 'ExecutionFailed', 'ExecutionCancelled']);
  private readonly waiting = new Map<string, (type: string) => void>();
  private readonly sub: Subscription;

  constructor(nc: NatsConnection) {
    this.sub = nc.subscribe(EXECUTION_SUBJECTS, {
      callback: (_err, msg) => {
        const done = this.waiting.get(msg.subject.slice('smartspec.exec.'.length));
        if (!done) return;
        const { type } = msg.json<{ type: string }>();
        if (EndWatcher.END_TYPES.has(type)) done(type);
      },
    });
  }

  /** Register before starting it, so the end cannot be missed. */
  expect(executionId: string): Promise<string> {
    return new Promise<string>((res) => this.waiting.set(executionId, res)).finally(() => this.waiting.delete(executionId));
  }

  close(): void {
    this.sub.unsubscribe();
  }
}

/** `promise`, or an error naming `what` after `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`${what}: not within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}
