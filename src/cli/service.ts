/**
 * `smartspec serve | edge | worker`: the service's composition root. The edge
 * takes HTTP and publishes commands; the worker consumes them and hosts the
 * executions; `serve` runs both in one process. Configuration comes from the
 * environment (README, "Configuration").
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { CommandBus } from '../bus/commands.js';
import { createEdgeApp, createEdgeLogger, loadEdgeConfig, startEdgeServer, ConfigError } from '../edge/index.js';
import { executionsRouter } from '../edge/routes/executions.js';
import { workflowsRouter } from '../edge/routes/workflows.js';
import { createLlmProxyRouter, createLlmRouter } from '../llm/index.js';
import { EventLog } from '../log/eventLog.js';
import { SnapshotStore } from '../log/snapshots.js';
import { openNats } from '../nats/embedded.js';
import { ExecutionIndex } from '../registry/executionIndex.js';
import { IdempotencyStore } from '../registry/idempotency.js';
import { WorkflowRegistry } from '../registry/workflows.js';
import { Engine } from '../worker/engine.js';
import { Worker } from '../worker/worker.js';
import { engineMetrics } from '../worker/metrics.js';
import { Registry } from 'prom-client';
import { cliExecutors } from './executors.js';
import { bindAddress, loadAuthConfig } from '../auth/config.js';
import { KeyStore } from '../auth/keys.js';
import { keysRouter } from '../edge/routes/keys.js';

const workerEnv = z.object({
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(100_000).default(256),
  ACK_WAIT_MS: z.coerce.number().int().min(200).max(3_600_000).default(30_000),
  MAX_DELIVER: z.coerce.number().int().min(1).max(10_000).default(50),
  NATS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
});

function loadWorkerConfig(env: NodeJS.ProcessEnv) {
  const parsed = workerEnv.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => ({ variable: String(i.path[0]), message: i.message })));
  return parsed.data;
}

export interface RunningService {
  /** The edge's base URL, when this process runs the edge. */
  url?: string;
  engine?: Engine;
  /** Stop serving: the edge closes, the worker hands its un-acked commands back, NATS closes. */
  stop(): Promise<void>;
}

export async function startService(roles: { edge: boolean; worker: boolean }, env = process.env): Promise<RunningService> {
  const config = loadEdgeConfig(env);
  const workerConfig = loadWorkerConfig(env);
  const authConfig = loadAuthConfig(env);
  const logger = createEdgeLogger(config);
  const nats = await openNats(`smartspec-${roles.edge && roles.worker ? 'serve' : roles.edge ? 'edge' : 'worker'}:${process.pid}`, env);
  const { nc } = nats;
  if (nats.server) logger.info({ url: nats.url }, 'started the embedded nats-server (set NATS_URL to use your own)');
  nc.closed().then((err) => err && logger.error({ err }, 'NATS connection closed'));

  const replicas = workerConfig.NATS_REPLICAS;
  const [index, snapshots] = await Promise.all([ExecutionIndex.open(nc, replicas), SnapshotStore.open(nc, replicas)]);
  const log = await EventLog.open(nc, { replicas, startOf: async (id) => (await index.get(id))?.firstSeq });
  const bus = await CommandBus.open(nc, { replicas, ...(roles.worker ? { consumer: { ackWaitMs: workerConfig.ACK_WAIT_MS, maxDeliver: workerConfig.MAX_DELIVER } } : {}) });
  const stops: (() => Promise<void>)[] = [];
  const registry = new Registry(); // one /metrics for the edge and the engine in this process
  let engine: Engine | undefined;
  let url: string | undefined;

  if (roles.worker) {
    engine = await Engine.create({
      nc,
      log,
      index,
      snapshots,
      executors: cliExecutors(),
      owner: `worker pid ${process.pid} on ${hostname()}`,
      onError: (err, what) => logger.warn({ err }, what),
      onRecord: engineMetrics(registry),
    });
    const worker = new Worker({ engine, bus, logger: logger.child({ role: 'worker' }), concurrency: workerConfig.WORKER_CONCURRENCY, ackWaitMs: workerConfig.ACK_WAIT_MS });
    await worker.start();
    stops.push(() => worker.stop());
    logger.info({ concurrency: workerConfig.WORKER_CONCURRENCY }, 'worker consuming commands');
  }

  if (roles.edge) {
    const [workflows, idempotency, keys] = await Promise.all([WorkflowRegistry.open(nc, replicas), IdempotencyStore.open(nc, replicas), KeyStore.open(nc, replicas)]);
    await Promise.all([index.watch(), keys.watch()]);
    stops.push(async () => { index.close(); keys.close(); });
    const required = authConfig.mode === 'required';
    let bind: ReturnType<typeof bindAddress>;
    try {
      bind = bindAddress(authConfig, required || keys.anyKeys);
    } catch (err) {
      // Refusing to listen openly: leave nothing running behind the error.
      for (const s of stops) await s().catch(() => undefined);
      await nats.close();
      throw err;
    }
    if (bind.warning) logger.warn(bind.warning);
    if (bind.note) logger.info(bind.note);
    const deps = { nc, log, bus, index, workflows, idempotency, snapshots, tenantMaxRunning: authConfig.tenantMaxRunning };
    const app = createEdgeApp({
      config,
      logger,
      metricsRegistry: registry,
      auth: { keys, required, metricsToken: authConfig.metricsToken },
      routers: [workflowsRouter(deps), executionsRouter(deps), keysRouter(keys), createLlmProxyRouter(createLlmRouter(env))],
      readiness: async () => {
        if (nc.isClosed()) return 'NATS connection closed';
        await nc.flush();
        return true;
      },
    });
    const server = await startEdgeServer(app, config.port, bind.host);
    url = server.url;
    stops.unshift(async () => { await server.close(); await app.close(); });
    logger.info({ url: server.url }, 'edge listening');
  }

  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      for (const s of stops) await s().catch((err) => logger.warn({ err }, 'shutdown step failed'));
      await nats.close();
    })());
  return { url, engine, stop };
}

/** The CLI's `serve`, `edge` and `worker`: run until SIGINT or SIGTERM. */
export async function runService(roles: { edge: boolean; worker: boolean }, env = process.env): Promise<void> {
  const service = await startService(roles, env);
  const shutdown = async () => {
    process.stdout.write('shutting down: running executions stay recorded and continue on another worker\n');
    await service.stop();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}
