/**
 * NATS_REPLICAS on a real 3-node cluster (issue 9): a first `run` without it
 * makes single-replica streams; a later command with NATS_REPLICAS=3 must
 * bring every SmartSpec stream and KV bucket to 3 replicas and say so — not
 * silently keep 1. Commands run as a user runs them (`node bin/smartspec.mjs`).
 * Run it with `npm run test:cluster`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { startService } from '../../src/cli/service.js';
import { connectNats } from '../../src/nats/connect.js';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';
import { COMMANDS_STREAM, EXECUTIONS_STREAM } from '../../src/nats/names.js';
import { runCommand } from '../support/commands.js';
import { natsUser, runnableConfig, TEST_NATS_PASSWORDS } from '../support/nats.js';
import { freePort, until } from '../support/processes.js';

const CLUSTER_DIR = resolve(import.meta.dirname, '../../cluster');
const STREAMS = [EXECUTIONS_STREAM, COMMANDS_STREAM, 'KV_smartspec_workflows', 'KV_smartspec_executions', 'KV_smartspec_idempotency', 'KV_smartspec_snapshots'];

let tmp: string;
const servers: NatsServer[] = [];
let natsUrl: string;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'smartspec-replicas-'));
  const clusterPorts = [await freePort(), await freePort(), await freePort()];
  const routes = clusterPorts.map((p) => `nats-route://127.0.0.1:${p}`).join(',');
  for (const [i, clusterPort] of clusterPorts.entries()) {
    const configFile = await runnableConfig(join(CLUSTER_DIR, `node-${i + 1}.conf`), tmp);
    servers.push(await startNatsServer({ storeDir: join(tmp, `store-${i + 1}`), configFile, env: TEST_NATS_PASSWORDS, args: ['--cluster', `nats://127.0.0.1:${clusterPort}`, '--routes', routes] }));
  }
  natsUrl = servers.map((s) => s.url).join(',');
  nc = await connectNats(natsUrl, 'replicas-test', natsUser('service'));
  jsm = await jetstreamManager(nc, { checkAPI: false });
  await until('the JetStream meta leader', async () => (await jsm.getAccountInfo(), true), 30_000, 200);
}, 90_000);

afterAll(async () => {
  await nc?.close().catch(() => undefined);
  for (const s of servers) await s.stop().catch(() => undefined);
  if (tmp) await rm(tmp, { recursive: true, force: true });
}, 60_000);

const replicasOf = async (stream: string) => (await jsm.streams.info(stream)).config.num_replicas;

describe('NATS_REPLICAS on a cluster', () => {
  it('streams made with 1 replica are brought to 3 by a later command with NATS_REPLICAS=3, which says so', async () => {
    // Every stream and bucket, made by a service and a run that do not ask for replicas.
    const service = await startService({ edge: true, worker: true }, { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'silent', NATS_URL: natsUrl, ...natsUser('service') });
    await service.stop();
    const run = await runCommand(['run', 'examples/fork-join.json', '--id', 'r1', '--input', '{"feature":"x"}'], { NATS_URL: natsUrl, ...natsUser('service') });
    expect(run.code, run.stderr).toBe(0);
    for (const s of STREAMS) expect(await replicasOf(s), s).toBe(1);

    const status = await runCommand(['status', 'r1'], { NATS_URL: natsUrl, NATS_REPLICAS: '3', ...natsUser('service') });
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^r1\s+spec-review\s+COMPLETED/m);
    for (const s of STREAMS) {
      expect(await replicasOf(s), s).toBe(3);
      expect(status.stderr).toContain(`stream ${s} changed from 1 to 3 replica(s)`);
    }

    // Asked again: nothing to change, nothing said; and without NATS_REPLICAS nothing is reduced.
    const again = await runCommand(['run', 'examples/fork-join.json', '--input', '{"feature":"y"}'], { NATS_URL: natsUrl, NATS_REPLICAS: '3', ...natsUser('service') });
    expect(again.code).toBe(0);
    expect(again.stderr).toBe('');
    const unset = await runCommand(['status', 'r1'], { NATS_URL: natsUrl, ...natsUser('service') });
    expect(unset.code).toBe(0);
    for (const s of STREAMS) expect(await replicasOf(s), s).toBe(3);
  }, 120_000);
});
