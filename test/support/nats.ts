/**
 * Test harness: a real nats-server per test file, on a free loopback port with
 * a temporary store, stopped (and its store removed) after the file's tests.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';

export interface NatsFixture {
  /** Set once beforeAll has run. */
  server: NatsServer;
  url: string;
  storeDir: string;
}

/** Call at the top of a test file: starts one server for the file. */
export function useNatsServer(): NatsFixture {
  const fixture = {} as NatsFixture;
  beforeAll(async () => {
    fixture.storeDir = await mkdtemp(join(tmpdir(), 'smartspec-test-'));
    fixture.server = await startNatsServer({ storeDir: fixture.storeDir });
    fixture.url = fixture.server.url;
  });
  afterAll(async () => {
    await fixture.server?.stop();
    if (fixture.storeDir) await rm(fixture.storeDir, { recursive: true, force: true });
  });
  return fixture;
}

/**
 * A shipped config file, runnable by startNatsServer in a temporary folder:
 * without its store_dir (startNatsServer gives --store_dir; nats-server refuses
 * both) and with its includes inlined (nats-server resolves them relative to
 * the including file, which is no longer next to them).
 */
export async function runnableConfig(shipped: string, tmpDir: string, options: { clusterListen?: string } = {}): Promise<string> {
  const configFile = join(tmpDir, basename(shipped));
  let text = await inlined(shipped);
  // The cluster files listen for routes on fixed ports; a test moves that to a free one.
  if (options.clusterListen) text = text.replace(/(\ncluster\s*\{[^]*?\n\s*listen:\s*)\S+/, `$1${options.clusterListen}`);
  await writeFile(configFile, text);
  return configFile;
}

async function inlined(file: string): Promise<string> {
  const lines: string[] = [];
  for (const line of (await readFile(file, 'utf8')).split('\n')) {
    const include = /^\s*include\s+["']?([^"'\s;]+)/.exec(line);
    if (include) lines.push(await inlined(resolve(dirname(file), include[1])));
    else if (!/^\s*store_dir\s*:/.test(line)) lines.push(line);
  }
  return lines.join('\n');
}

/** The route password the cluster files (cluster/node-N.conf) read, for tests. */
export const TEST_ROUTE_PASSWORD = 'route-secret';

/** SMARTSPEC_ROUTE_PASSWORD and the route URLs SMARTSPEC_ROUTE_1..3, with credentials, for the cluster ports given. */
export function clusterRouteEnv(ports: number[] = [6222, 6223, 6224], password = TEST_ROUTE_PASSWORD): Record<string, string> {
  return Object.fromEntries([
    ['SMARTSPEC_ROUTE_PASSWORD', password],
    ...ports.map((port, i) => [`SMARTSPEC_ROUTE_${i + 1}`, `nats-route://route:${password}@127.0.0.1:${port}`]),
  ]);
}

/**
 * The passwords nats-users.conf reads from the server's environment, for tests;
 * with the cluster files' route variables (shipped ports: tests that pass
 * --cluster and --routes replace them, and --cluster without credentials
 * also turns the route authorization off).
 */
export const TEST_NATS_PASSWORDS = {
  SMARTSPEC_EDGE_PASSWORD: 'edge-secret',
  SMARTSPEC_WORKER_PASSWORD: 'worker-secret',
  SMARTSPEC_SERVICE_PASSWORD: 'service-secret',
  SMARTSPEC_INTEGRATION_PASSWORD: 'integration-secret',
  ...clusterRouteEnv(),
};

/** NATS_USER and NATS_PASSWORD of one of nats-users.conf's users. */
export const natsUser = (user: 'edge' | 'worker' | 'service' | 'integration') => ({
  NATS_USER: user,
  NATS_PASSWORD: TEST_NATS_PASSWORDS[`SMARTSPEC_${user.toUpperCase()}_PASSWORD` as keyof typeof TEST_NATS_PASSWORDS],
});
