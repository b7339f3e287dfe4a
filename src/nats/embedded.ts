/**
 * Where the CLI's NATS comes from: NATS_URL when set; otherwise the embedded
 * default, a nats-server child started from the repository's nats.conf with
 * its store under the data folder (SMARTSPEC_DATA_DIR, default ./smartspec-data),
 * so what one command writes is there for the next. A server already started
 * for the same data folder (by a command still running) is reused, not doubled.
 */
import { readFile, writeFile, rm, mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from './connect.js';
import { startNatsServer, type NatsServer } from './server.js';

export interface NatsHandle {
  nc: NatsConnection;
  url: string;
  /** Present when this process started the server (and so stops it). */
  server?: NatsServer;
  close(): Promise<void>;
}

export const dataDir = (env = process.env) => resolve(env.SMARTSPEC_DATA_DIR ?? 'smartspec-data');

export async function openNats(name: string, env = process.env): Promise<NatsHandle> {
  if (env.NATS_URL) {
    const nc = await connectNats(env.NATS_URL, name);
    return { nc, url: env.NATS_URL, close: () => nc.close() };
  }
  const dir = dataDir(env);
  const stateFile = join(dir, 'nats-server.json');
  const running = await readRunning(stateFile);
  if (running) {
    try {
      const nc = await connectNats(running.url, name);
      return { nc, url: running.url, close: () => nc.close() };
    } catch {
      // stale: start our own below
    }
  }
  await mkdir(dir, { recursive: true });
  const server = await startNatsServer({ storeDir: join(dir, 'nats'), logFile: join(dir, 'nats-server.log') });
  await writeFile(stateFile, JSON.stringify({ pid: server.pid, url: server.url }));
  const nc = await connectNats(server.url, name);
  return {
    nc,
    url: server.url,
    server,
    close: async () => {
      await nc.close();
      await server.stop();
      await rm(stateFile, { force: true });
    },
  };
}

async function readRunning(file: string): Promise<{ pid: number; url: string } | undefined> {
  try {
    const s = JSON.parse(await readFile(file, 'utf8')) as { pid: number; url: string };
    process.kill(s.pid, 0); // throws when no such process
    return s;
  } catch {
    return undefined;
  }
}
