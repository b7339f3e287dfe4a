/**
 * The embedded nats-server of a data folder, shared by every command that
 * uses the folder. It runs detached (its own session), so it outlives the
 * command that started it and a Ctrl-C in the terminal does not reach it.
 * Each command using it holds a lease: a file named after its pid in
 * `<data>/nats-leases/`. A command going away removes its lease and, when no
 * live lease is left, stops the server. A lease whose process is gone (a
 * SIGKILLed command) counts for nothing, so the next command to leave stops
 * a server nobody uses; until then a running, idle server is simply reused.
 *
 * Start-up, reuse and the last leaver's stop happen under a lock file in the
 * data folder, so two commands never start two servers on one store, and a
 * server is never stopped while another command is between finding it and
 * taking its lease.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { SmartSpecError } from '../errors.js';
import { readEmbeddedToken, writeEmbeddedConfig } from './embeddedToken.js';
import { startNatsServer } from './server.js';

export interface ServerState {
  pid: number;
  url: string;
  /** The server's own id: a reused port answered by another server is not ours. */
  serverId: string;
  startedAt: string;
}

export interface Lease {
  pid: number;
  /** The process's start time (Linux): a reused pid is not the leaseholder. */
  start?: string;
  /** What the command is (e.g. `serve`), for `smartspec nats status`. */
  command: string;
  since: string;
}

const LOCK_WAIT_MS = 60_000;
/** A lock-breaker that died mid-break leaves its marker (a holder killed mid-write, an empty lock); older than this, it is ignored. */
const BREAKER_STALE_MS = 10_000;

const stateFile = (dir: string) => join(dir, 'nats-server.json');
const leasesDir = (dir: string) => join(dir, 'nats-leases');
const leaseFile = (dir: string, pid: number) => join(leasesDir(dir), `${pid}.json`);

/**
 * Use the data folder's server, starting it when none runs. The lease holds
 * the server up until `release()`, which stops it when this was its last user.
 */
export async function acquireServer(dir: string, command: string): Promise<{ url: string; token?: string; started: boolean; release(): Promise<void> }> {
  await mkdir(leasesDir(dir), { recursive: true });
  const { url, started } = await withLock(dir, async () => {
    await writeFile(leaseFile(dir, process.pid), JSON.stringify({ pid: process.pid, start: processStart(process.pid), command, since: new Date().toISOString() } satisfies Lease));
    try {
      const running = await readState(dir);
      if (running && (await answers(dir, running))) return { url: running.url, started: false };
      if (running) await stopServer(dir, running); // stuck or gone: never two servers on one store
      return { url: (await startServer(dir)).url, started: true };
    } catch (err) {
      await rm(leaseFile(dir, process.pid), { force: true });
      throw err;
    }
  });
  let released: Promise<void> | undefined;
  return { url, token: readEmbeddedToken(dir), started, release: () => (released ??= releaseLease(dir)) };
}

async function releaseLease(dir: string): Promise<void> {
  await withLock(dir, async () => {
    await rm(leaseFile(dir, process.pid), { force: true });
    if ((await liveLeases(dir)).length > 0) return;
    const running = await readState(dir);
    if (running) await stopServer(dir, running);
  });
}

/** What `smartspec nats status` shows: the server (if one runs) and the commands using it. */
export async function serverStatus(dir: string): Promise<{ server?: ServerState; answering: boolean; users: Lease[] }> {
  const server = await readState(dir);
  const users = await liveLeases(dir);
  return { server, answering: server ? await answers(dir, server) : false, users };
}

/**
 * `smartspec nats stop`: stop the server unless a live command uses it
 * (then it is left alone and the users are returned).
 */
export async function stopUnusedServer(dir: string): Promise<{ stopped?: ServerState; users: Lease[] }> {
  await mkdir(leasesDir(dir), { recursive: true });
  return withLock(dir, async () => {
    const users = await liveLeases(dir);
    const running = await readState(dir);
    if (users.length > 0 || !running) return { users };
    await stopServer(dir, running);
    return { stopped: running, users };
  });
}

async function startServer(dir: string): Promise<ServerState> {
  // A server whose starter was killed before recording it would share the store with a second one.
  for (const pid of unrecordedServers(dir)) await stopServer(dir, { pid } as ServerState);
  const { configFile, token } = await writeEmbeddedConfig(dir);
  const server = await startNatsServer({
    configFile,
    storeDir: join(dir, 'nats'),
    logFile: join(dir, 'nats-server.log'),
    detached: { stderrFile: join(dir, 'nats-server.stderr') },
  });
  const serverId = await serverIdAt(server.url, token);
  if (!serverId) {
    await server.kill();
    throw new SmartSpecError('NATS_SERVER_FAILED', `the embedded nats-server (pid ${server.pid}) does not answer at ${server.url}; see ${join(dir, 'nats-server.log')}`);
  }
  const state: ServerState = { pid: server.pid, url: server.url, serverId, startedAt: new Date().toISOString() };
  await writeFile(stateFile(dir), JSON.stringify(state));
  return state;
}

/** Stop the recorded server (if its process is still that nats-server) and forget it. */
async function stopServer(dir: string, state: ServerState): Promise<void> {
  if (isNatsServer(state.pid, dir)) {
    process.kill(state.pid, 'SIGTERM');
    const killAt = Date.now() + 10_000;
    while (isAlive(state.pid)) {
      if (Date.now() > killAt) process.kill(state.pid, 'SIGKILL');
      await sleep(25);
    }
  }
  await rm(stateFile(dir), { force: true });
}

/** The recorded server is alive and is the one at its URL (retried: a busy server may answer late). */
async function answers(dir: string, state: ServerState): Promise<boolean> {
  for (let attempt = 0; attempt < 3 && isAlive(state.pid); attempt++) {
    const id = await serverIdAt(state.url, readEmbeddedToken(dir));
    if (id !== undefined) return id === state.serverId;
  }
  return false;
}

async function serverIdAt(url: string, token: string | undefined): Promise<string | undefined> {
  try {
    const nc = await connect({ servers: url, timeout: 2000, reconnect: false, name: 'smartspec-probe', ...(token ? { token } : {}) });
    const id = nc.info?.server_id;
    await nc.close();
    return id;
  } catch {
    return undefined;
  }
}

async function readState(dir: string): Promise<ServerState | undefined> {
  try {
    return JSON.parse(await readFile(stateFile(dir), 'utf8')) as ServerState;
  } catch {
    return undefined;
  }
}

/** Leases of live processes; those of dead ones are removed. */
async function liveLeases(dir: string): Promise<Lease[]> {
  const live: Lease[] = [];
  for (const name of await readdir(leasesDir(dir)).catch(() => [] as string[])) {
    const file = join(leasesDir(dir), name);
    let lease: Lease | undefined;
    try {
      lease = JSON.parse(await readFile(file, 'utf8')) as Lease;
    } catch {
      lease = undefined; // half-written by a process killed at that moment
    }
    if (lease && isSameProcess(lease.pid, lease.start)) live.push(lease);
    else await rm(file, { force: true });
  }
  return live;
}

/**
 * Run `fn` holding the data folder's lock file. A lock left by a dead process
 * is broken — by one waiter at a time (the breaker file), so two waiters can
 * never both break it and then both hold it.
 */
async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const lock = join(dir, 'nats-server.lock');
  const breaker = `${lock}.break`;
  const me = JSON.stringify({ pid: process.pid, start: processStart(process.pid) });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await writeFile(lock, me, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readFile(lock, 'utf8').catch(() => undefined);
    if (holder !== undefined && !(await holderAlive(holder, lock))) {
      const old = await stat(breaker).then((s) => Date.now() - s.mtimeMs > BREAKER_STALE_MS, () => false);
      if (old) await rm(breaker, { force: true });
      const breaking = await writeFile(breaker, me, { flag: 'wx' }).then(() => true, () => false);
      if (breaking) {
        // Still the dead holder's lock (not one taken meanwhile by a live process)?
        if ((await readFile(lock, 'utf8').catch(() => undefined)) === holder) await rm(lock, { force: true });
        await rm(breaker, { force: true });
        continue;
      }
    }
    if (Date.now() > deadline) throw new SmartSpecError('NATS_SERVER_LOCKED', `the data folder ${dir} stays locked by another smartspec command (${lock}); remove that file if no smartspec command runs`);
    await sleep(20);
  }
  try {
    return await fn();
  } finally {
    await rm(lock, { force: true });
  }
}

async function holderAlive(content: string, lock: string): Promise<boolean> {
  try {
    const { pid, start } = JSON.parse(content) as { pid: number; start?: string };
    return isSameProcess(pid, start);
  } catch {
    // Being written right now — or left unwritten by a process killed in between: then it gets old.
    return stat(lock).then((s) => Date.now() - s.mtimeMs < BREAKER_STALE_MS, () => false);
  }
}

function isSameProcess(pid: number, start: string | undefined): boolean {
  if (!isAlive(pid)) return false;
  const now = processStart(pid);
  return start === undefined || now === undefined || now === start;
}

/** A zombie (exited, not yet reaped by its parent) counts as gone. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z';
  } catch {
    return true;
  }
}

/** Field 22 of /proc/<pid>/stat (start time since boot); undefined off Linux. */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** nats-servers of this data folder that no state file names (Linux: from /proc). */
function unrecordedServers(dir: string): number[] {
  try {
    return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number).filter((pid) => pid !== process.pid && isNatsServer(pid, dir));
  } catch {
    return [];
  }
}

/** Only ever signal the nats-server of this data folder, never a process that reused its pid. */
function isNatsServer(pid: number, dir: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return args[0].endsWith('nats-server') && args.includes(join(dir, 'nats'));
  } catch {
    return process.platform !== 'linux'; // no /proc to ask: trust the state file
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
