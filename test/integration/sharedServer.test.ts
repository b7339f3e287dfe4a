/**
 * What a killed command leaves in a data folder must not block the next one:
 * a lock file of a dead process (or an empty one), leases of dead processes,
 * a state file naming a server that is gone. Real nats-servers, in-process.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireServer, serverStatus } from '../../src/nats/sharedServer.js';
import { connectNats } from '../../src/nats/connect.js';
import { isAlive, killEmbeddedServer } from '../support/commands.js';

let tmp: string;
const dirs: string[] = [];
/** The pid of a process that has exited. */
let deadPid: number;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-shared-'));
  deadPid = spawnSync(process.execPath, ['-e', '0']).pid!;
});
afterAll(async () => {
  for (const d of dirs) killEmbeddedServer(d);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function folder(name: string): Promise<string> {
  const dir = join(tmp, name);
  dirs.push(dir);
  await mkdir(join(dir, 'nats-leases'), { recursive: true });
  return dir;
}

describe('the embedded server after a killed command', () => {
  it('a lock and a lease of dead processes and a state file naming a gone server: a server starts, and stops with its last user', async () => {
    const dir = await folder('leftovers');
    await writeFile(join(dir, 'nats-server.lock'), JSON.stringify({ pid: deadPid }));
    await writeFile(join(dir, 'nats-leases', `${deadPid}.json`), JSON.stringify({ pid: deadPid, command: 'run (killed)', since: new Date().toISOString() }));
    await writeFile(join(dir, 'nats-server.json'), JSON.stringify({ pid: deadPid, url: 'nats://127.0.0.1:1', serverId: 'gone', startedAt: new Date().toISOString() }));

    const lease = await acquireServer(dir, 'test');
    expect(lease.started).toBe(true);
    const nc = await connectNats(lease.url, 'shared-test', { NATS_TOKEN: lease.token });
    await nc.flush();
    await nc.close();
    const status = await serverStatus(dir);
    expect(status.answering).toBe(true);
    expect(status.users.map((u) => u.pid)).toEqual([process.pid]); // the dead lease was dropped
    const pid = status.server!.pid;

    await lease.release();
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(join(dir, 'nats-server.json'))).toBe(false);
    expect(existsSync(join(dir, 'nats-server.lock'))).toBe(false);
    expect(await readdir(join(dir, 'nats-leases'))).toEqual([]);
  }, 60_000);

  it('an empty lock file (its holder killed while writing it) is broken once old', async () => {
    const dir = await folder('empty-lock');
    const lock = join(dir, 'nats-server.lock');
    await writeFile(lock, '');
    const old = new Date(Date.now() - 60_000);
    await utimes(lock, old, old);
    const lease = await acquireServer(dir, 'test');
    await lease.release();
    expect(existsSync(lock)).toBe(false);
  }, 60_000);

  it('a live server no command uses is reused, not doubled', async () => {
    const dir = await folder('reuse');
    const first = await acquireServer(dir, 'first');
    const second = await acquireServer(dir, 'second'); // same process: one lease file, one server
    expect(second.started).toBe(false);
    expect(second.url).toBe(first.url);
    await second.release();
    await first.release();
    expect(existsSync(join(dir, 'nats-server.json'))).toBe(false);
  }, 60_000);
});
