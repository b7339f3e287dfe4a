/**
 * Where the CLI's NATS comes from: NATS_URL when set; otherwise the embedded
 * default, the data folder's nats-server (SMARTSPEC_DATA_DIR, default
 * ./smartspec-data), started from the repository's nats.conf when none runs,
 * so what one command writes is there for the next. That server is shared by
 * every command of the folder and stops when the last of them has gone
 * (sharedServer.ts).
 */
import { resolve } from 'node:path';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from './connect.js';
import { NATS_AUTH_VARIABLES, NatsConfigError } from './credentials.js';
import { acquireServer } from './sharedServer.js';

export interface NatsHandle {
  nc: NatsConnection;
  url: string;
  /** This process started the embedded server (others may use it now too). */
  started: boolean;
  close(): Promise<void>;
}

export const dataDir = (env = process.env) => resolve(env.SMARTSPEC_DATA_DIR ?? 'smartspec-data');

/** `name` names the connection; `command` says what uses the embedded server (`smartspec nats status`). */
export async function openNats(name: string, env = process.env, command = name): Promise<NatsHandle> {
  if (env.NATS_URL) {
    const nc = await connectNats(env.NATS_URL, name, env);
    return { nc, url: env.NATS_URL, started: false, close: () => nc.close() };
  }
  // The embedded server has its own token (embeddedToken.ts): credentials set for it are a mistake.
  const stray = NATS_AUTH_VARIABLES.find((v) => env[v]?.trim());
  if (stray) throw new NatsConfigError(stray, "set, but NATS_URL is not: credentials and TLS are for your own NATS server (set NATS_URL); the embedded one uses the data folder's own token");
  const lease = await acquireServer(dataDir(env), command);
  let nc: NatsConnection;
  try {
    nc = await connectNats(lease.url, name, lease.token ? { NATS_TOKEN: lease.token } : {});
  } catch (err) {
    await lease.release();
    throw err;
  }
  return {
    nc,
    url: lease.url,
    started: lease.started,
    close: async () => {
      await nc.close().catch(() => undefined);
      await lease.release();
    },
  };
}
