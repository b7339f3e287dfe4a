/**
 * Authenticated cluster routes: the shipped cluster/node-N.conf files, as
 * they are but for the route port (moved to a free one), with the route
 * password and route URLs from the environment. The three servers form a
 * cluster and keep a stream on all three; a fourth server with the wrong
 * route password is refused by every one of them and never joins.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats } from '../../src/nats/connect.js';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';
import { freePort, REPO, until } from '../support/processes.js';
import { clusterRouteEnv, natsUser, runnableConfig, TEST_NATS_PASSWORDS } from '../support/nats.js';

let tmp: string;
const servers: NatsServer[] = [];
const logs: string[] = [];
const connections: NatsConnection[] = [];
let ports: number[];

async function startNode(i: number, routePort: number, env: Record<string, string>, name: string): Promise<NatsServer> {
  const dir = join(tmp, name);
  await mkdir(dir, { recursive: true });
  const configFile = await runnableConfig(join(REPO, 'cluster', `node-${i}.conf`), dir, { clusterListen: `127.0.0.1:${routePort}` });
  const logFile = join(dir, 'nats.log');
  const server = await startNatsServer({ storeDir: join(dir, 'store'), configFile, logFile, env: { ...TEST_NATS_PASSWORDS, ...env }, args: ['--name', name] });
  servers.push(server);
  logs.push(logFile);
  return server;
}

async function manager(server: NatsServer): Promise<JetStreamManager> {
  const nc = await connectNats(server.url, 'route-auth-test', natsUser('service'));
  connections.push(nc);
  return jetstreamManager(nc, { checkAPI: false });
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-routeauth-'));
  ports = [await freePort(), await freePort(), await freePort()];
  for (const [i, port] of ports.entries()) await startNode(i + 1, port, clusterRouteEnv(ports), `smartspec-${i + 1}`);
}, 60_000);

afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => undefined);
  for (const s of servers) await s.stop().catch(() => undefined);
  if (tmp) await rm(tmp, { recursive: true, force: true });
}, 60_000);

describe('cluster routes with the route password', () => {
  it('the three shipped nodes form a cluster and keep a stream on all three', async () => {
    const jsm = await manager(servers[0]);
    await until('the JetStream meta leader', async () => (await jsm.getAccountInfo(), true), 30_000, 200);
    await until('an R3 stream', async () => (await jsm.streams.add({ name: 'ROUTE_AUTH', subjects: ['route.auth.>'], num_replicas: 3 }), true), 30_000, 500);
    const info = await until('all three replicas current', async () => {
      const i = await jsm.streams.info('ROUTE_AUTH');
      return i.cluster?.leader && i.cluster.replicas?.length === 2 && i.cluster.replicas.every((r) => r.current) ? i : undefined;
    }, 30_000, 200);
    const members = [info.cluster!.leader, ...info.cluster!.replicas!.map((r) => r.name)].sort();
    expect(members).toEqual(['smartspec-1', 'smartspec-2', 'smartspec-3']);
  }, 90_000);

  it('a server with the wrong route password is refused by every node and never joins', async () => {
    const intruderPort = await freePort();
    const wrong = clusterRouteEnv(ports, 'not-the-password');
    const intruder = await startNode(3, intruderPort, wrong, 'intruder');
    // Its routes reach the three route ports and are refused there.
    await until('every node to refuse the intruder', async () => {
      const texts = await Promise.all(logs.slice(0, 3).map((f) => readFile(f, 'utf8')));
      return texts.every((t) => /Router connection closed: Authentication Failure|Authorization Violation/i.test(t));
    }, 20_000, 200);
    // No route: its clients see no JetStream of the cluster, and the stream's members are unchanged.
    const outside = await manager(intruder);
    await expect(outside.streams.info('ROUTE_AUTH')).rejects.toThrow();
    const jsm = await manager(servers[0]);
    const info = await jsm.streams.info('ROUTE_AUTH');
    expect([info.cluster!.leader, ...info.cluster!.replicas!.map((r) => r.name)].sort()).toEqual(['smartspec-1', 'smartspec-2', 'smartspec-3']);
    expect(await readFile(logs[3], 'utf8')).toMatch(/Authorization Violation/i);
  }, 60_000);
});
