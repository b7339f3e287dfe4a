/**
 * Test harness: a real redis-server per test file, on a free loopback port,
 * with no persistence (no RDB, no AOF) and a temporary working directory,
 * stopped after the file's tests. Without a `redis-server` binary the tests
 * that need it are skipped with a message naming the missing binary
 * (`REDIS_SKIP_REASON`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { freePort, until } from './processes.js';

function findRedisServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/bin', '/usr/bin'];
  return dirs.filter((d) => d.startsWith('/')).map((d) => join(d, 'redis-server')).find((p) => existsSync(p));
}

export const REDIS_SERVER_BIN = findRedisServer();
/** Why the Redis tests do not run here, or undefined when they do. */
export const REDIS_SKIP_REASON = REDIS_SERVER_BIN ? undefined : 'skipped: no redis-server binary on PATH (apt-get install redis-server)';
if (REDIS_SKIP_REASON) console.warn(`[redis tests] ${REDIS_SKIP_REASON}`);

export interface RedisFixture {
  /** Set once beforeAll has run. */
  url: string;
}

/** Call at the top of a test file (or a describe): starts one redis-server for it. */
export function useRedisServer(): RedisFixture {
  const fixture = {} as RedisFixture;
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  beforeAll(async () => {
    if (!REDIS_SERVER_BIN) return;
    dir = await mkdtemp(join(tmpdir(), 'smartspec-redis-'));
    const port = await freePort();
    let output = '';
    child = spawn(REDIS_SERVER_BIN, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout!.on('data', (b: Buffer) => { output = (output + b.toString()).slice(-4000); });
    child.stderr!.on('data', (b: Buffer) => { output = (output + b.toString()).slice(-4000); });
    const proc = child;
    await until(`redis-server on port ${port} to accept connections`, async () => {
      if (proc.exitCode !== null) throw new Error(`redis-server exited (${proc.exitCode}): ${output}`);
      return /Ready to accept connections/.test(output);
    }, 10_000, 20);
    fixture.url = `redis://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return fixture;
}
