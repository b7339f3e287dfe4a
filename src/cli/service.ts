/**
 * `smartspec serve | edge | worker`: the service's composition root. The edge
 * takes HTTP and publishes commands; the worker consumes them and hosts the
 * executions; `serve` runs both in one process. Configuration comes from the
 * environment (README, "Configuration").
 */
import { StuckSweeper } from '../recovery/stuckExecutions.js';
import { hostname } from 'node:os';
import { z } from 'zod';
import { CommandBus } from '../bus/commands.js';
import type { EdgeApp } from '../edge/app.js';
import { ConfigError, loadEdgeConfig } from '../edge/config.js';
import { createEdgeLogger } from '../edge/logger.js';
import { EventLog } from '../log/eventLog.js';
import { SnapshotStore } from '../log/snapshots.js';
import { reportPermissionViolations } from '../nats/credentials.js';
import { openNats } from '../nats/embedded.js';
import { reconcileReplicas } from '../nats/replicas.js';
import { Partitions } from '../nats/partitions.js';
import { ExecutionIndex } from '../registry/executionIndex.js';
import { WorkflowRegistry } from '../registry/workflows.js';
import { Engine } from '../worker/engine.js';
import { TimerStore } from '../timers/timerStore.js';
import { Worker } from '../worker/worker.js';
import { engineMetrics } from '../worker/metrics.js';
import { Registry } from 'prom-client';
import { cliExecutors } from './executors.js';
import { SmartSpecError } from '../errors.js';
import { payloadLimitsFromEnv } from '../payloads/config.js';
import { PayloadStore } from '../payloads/store.js';
import { loadLimits, useLimits } from '../limits.js';
import { startRetention } from '../retention/schedule.js';
import { SecretStore } from '../secrets/secretStore.js';
import { bindAddress, loadAuthConfig } from '../auth/config.js';
import { FiringStarter } from '../schedules/firing.js';
import { Scheduler } from '../schedules/scheduler.js';
import { ScheduleStore } from '../schedules/scheduleStore.js';
import { loadEventsConfig } from '../triggers/config.js';
import { ensureEventsStream, TriggerConsumer } from '../triggers/triggerConsumer.js';
import { WaitDispatcher } from '../events/waitDispatcher.js';
import { WaitStore } from '../events/waitStore.js';
import { Admission, DEFAULT_LEASE_TTL_MS } from '../concurrency/admission.js';
import { LeaseStore } from '../concurrency/leaseStore.js';
import { WorkflowTriggers } from '../triggers/workflowTriggers.js';

/** Beyond the grace period, how long one part of a shutdown may take before the process goes on without it. */
const STOP_PART_MS = 12_000;

const workerEnv = z.object({
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(100_000).default(256),
  ACK_WAIT_MS: z.coerce.number().int().min(200).max(3_600_000).default(30_000),
  MAX_DELIVER: z.coerce.number().int().min(1).max(10_000).default(50),
  NATS_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  SMARTSPEC_SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(3_600_000).default(10_000),
  /** How long a concurrency key's lease outlives its worker (src/concurrency); renewed every third of it. */
  SMARTSPEC_LEASE_TTL_MS: z.coerce.number().int().min(300).max(3_600_000).default(DEFAULT_LEASE_TTL_MS),
});

function loadWorkerConfig(env: NodeJS.ProcessEnv) {
  const parsed = workerEnv.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((i) => ({ variable: String(i.path[0]), message: i.message })));
  return parsed.data;
}

export interface RunningService {
  /** The edge's base URL, when this process runs the edge. */
  url?: string;
  /** The edge's Koa app (its routers: `app.middleware`), when this process runs the edge. */
  app?: EdgeApp;
  engine?: Engine;
  /**
   * Stop serving: the edge closes; the worker takes no more commands, lets
   * running steps finish for up to `graceMs` (default 0), then hands every
   * execution it still hosts back to the other workers; NATS closes.
   */
  stop(graceMs?: number): Promise<void>;
  /** SMARTSPEC_SHUTDOWN_GRACE_MS: the grace period a signal gives (runService). */
  shutdownGraceMs: number;
}

export interface StartHooks {
  /** Called as soon as there is something to stop (NATS is connected): a signal during start-up stops what has started. */
  onStoppable?(stop: (graceMs: number) => Promise<void>, graceMs: number): void;
}

export async function startService(roles: { edge: boolean; worker: boolean }, env = process.env, hooks: StartHooks = {}): Promise<RunningService> {
  const config = loadEdgeConfig(env);
  const workerConfig = loadWorkerConfig(env);
  const limits = loadLimits(env);
  useLimits(limits);
  const partitions = Partitions.fromEnv(env);
  const payloadLimits = payloadLimitsFromEnv(env);
  const authConfig = loadAuthConfig(env);
  const eventsConfig = roles.worker ? loadEventsConfig(env) : undefined;
  const executors = roles.worker ? cliExecutors(env) : undefined; // an invalid HTTP_STEP_ALLOW stops here, before NATS
  const role = roles.edge && roles.worker ? 'serve' : roles.edge ? 'edge' : 'worker';
  const logger = createEdgeLogger(config, undefined, `smartspec-${role}`);
  const nats = await openNats(`smartspec-${role}:${process.pid}`, env, role);
  const { nc } = nats;
  if (nats.started) logger.info({ url: nats.url }, 'started the embedded nats-server (set NATS_URL to use your own)');
  nc.closed().then((err) => err && logger.error({ err }, 'NATS connection closed'));
  reportPermissionViolations(nc, env, (m) => logger.error(m));
  const stops: { part: string; stop: (graceMs: number) => Promise<void> }[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (graceMs = 0) =>
    (stopped ??= (async () => {
      // The edge and the worker stop side by side: open SSE streams must not delay the hand-back.
      // Each part gets a deadline: a part that stalls is named in the log, and the process still ends.
      await Promise.all(stops.map(({ part, stop: s }) => withinDeadline(part, s(graceMs), graceMs + STOP_PART_MS).catch((err) => logger.warn({ err, part }, 'shutdown step failed'))));
      await withinDeadline('nats connection', nats.close(), STOP_PART_MS).catch((err) => logger.warn({ err }, 'shutdown step failed'));
    })());
  const withinDeadline = async (part: string, work: Promise<void>, ms: number): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((res) => { timer = setTimeout(() => { logger.warn({ part, ms }, 'shutdown: a part did not stop in time; going on without it'); res(); }, ms); });
    try { await Promise.race([work, late]); } finally { clearTimeout(timer); }
  };
  hooks.onStoppable?.(stop, workerConfig.SMARTSPEC_SHUTDOWN_GRACE_MS);
  try {
    const { url, app, engine } = await startRoles();
    return { url, app, engine, stop, shutdownGraceMs: workerConfig.SMARTSPEC_SHUTDOWN_GRACE_MS };
  } catch (err) {
    await stop(); // what was started (the worker, the embedded nats-server's lease) does not outlive a failed start
    throw err;
  }

  async function startRoles(): Promise<{ url?: string; app?: EdgeApp; engine?: Engine }> {
    const replicas = workerConfig.NATS_REPLICAS;
    const [index, snapshots] = await Promise.all([ExecutionIndex.open(nc, replicas), SnapshotStore.open(nc, replicas)]);
    const payloads = new PayloadStore(nc, { limits: payloadLimits, replicas });
    // Refused here when the deployment's streams were made with another NATS_PARTITIONS.
    const log = await EventLog.open(nc, { replicas, partitions, maxBytes: limits.streamMaxBytes, startOf: async (id) => (await index.get(id))?.firstSeq });
    const bus = await CommandBus.open(nc, { replicas, partitions, ...(roles.worker ? { consumer: { ackWaitMs: workerConfig.ACK_WAIT_MS, maxDeliver: workerConfig.MAX_DELIVER } } : {}) });
    // Set explicitly: streams made earlier with another count are brought to it (unset: left alone).
    if (env.NATS_REPLICAS?.trim()) await reconcileReplicas(nc, replicas, (m) => logger.warn(m), partitions);
    const registry = new Registry(); // one /metrics for the edge and the engine in this process
    let engine: Engine | undefined;
    let url: string | undefined;
    let edgeApp: EdgeApp | undefined;

    if (roles.worker) {
      const timers = await TimerStore.open(nc, replicas);
      await ensureEventsStream(nc, eventsConfig!, replicas);
      const waits = await WaitStore.open(nc, eventsConfig!.stream, replicas);
      const admission = new Admission(
        await LeaseStore.open(nc, replicas),
        (waiter, key, msgId) => bus.publish('wake', { executionId: waiter.executionId, key, holder: waiter.id }, msgId),
        { ttlMs: workerConfig.SMARTSPEC_LEASE_TTL_MS, onError: (err, what) => logger.warn({ err }, what) },
      );
      engine = await Engine.create({
        timers,
        waits,
        admission,
        nc,
        log,
        index,
        snapshots,
        payloads,
        executors,
        secrets: await SecretStore.open(nc, env, replicas),
        registry: await WorkflowRegistry.open(nc, replicas),
        bus,
        owner: `worker pid ${process.pid} on ${hostname()}`,
        onError: (err, what) => logger.warn({ err }, what),
        onRecord: engineMetrics(registry),
        historyLimit: limits.historyLimit,
      });
      const worker = new Worker({ engine, bus, timers, logger: logger.child({ role: 'worker' }), concurrency: workerConfig.WORKER_CONCURRENCY, ackWaitMs: workerConfig.ACK_WAIT_MS });
      await worker.start();
      // The leases still held go back once the worker has stopped its executions.
      stops.push({ part: 'worker', stop: async (graceMs) => { await worker.stop(graceMs); await admission.close(); } });
      logger.info({ concurrency: workerConfig.WORKER_CONCURRENCY }, 'worker consuming commands');
      // Every worker runs the scheduler: each firing is claimed by one of them (src/schedules).
      const scheduler = new Scheduler(await ScheduleStore.open(nc, replicas), new FiringStarter(await WorkflowRegistry.open(nc, replicas), bus), { onError: (err, what) => logger.warn({ err }, what) });
      scheduler.start();
      stops.push({ part: 'scheduler', stop: async () => scheduler.stop() });
      // Every worker consumes the events stream for the workflows' triggers (src/triggers) and delivers
      // each event to the waitForEvent steps waiting anywhere (src/events): one consumer for both.
      const triggers = await WorkflowTriggers.open(nc, replicas);
      const dispatcher = new WaitDispatcher({ nc, bus, waits, logger: logger.child({ role: 'waits' }) });
      await Promise.all([triggers.start(), dispatcher.start()]);
      const triggerConsumer = new TriggerConsumer({ nc, bus, triggers, waits: dispatcher, config: eventsConfig!, logger: logger.child({ role: 'triggers' }), replicas, ackWaitMs: workerConfig.ACK_WAIT_MS });
      await triggerConsumer.start();
      stops.push({ part: 'triggers and event waits', stop: async () => { await triggerConsumer.stop(); triggers.stop(); dispatcher.stop(); } });
      if (limits.retentionMs !== undefined) {
        const stopRetention = startRetention(nc, { partitions, retentionMs: limits.retentionMs, intervalMs: limits.retentionIntervalMs, logger: logger.child({ role: 'retention' }) });
        stops.push({ part: 'retention', stop: () => stopRetention() });
      }
    }

    if (roles.edge) {
      const { createEdgeApp, startEdgeServer, executionsRouter, workflowsRouter, keysRouter, schedulesRouter, contractsRouter, uiRouter, createLlmProxyRouter, createLlmRouter, KeyStore, IdempotencyStore } = await import('./edgeRole.js');
      const [workflows, idempotency, keys, schedules] = await Promise.all([WorkflowRegistry.open(nc, replicas), IdempotencyStore.open(nc, replicas), KeyStore.open(nc, replicas), ScheduleStore.open(nc, replicas)]);
      await Promise.all([index.watch(), keys.watch()]);
      let closeServer: () => Promise<void> = async () => {}; // set once the server listens
      const stuck = new StuckSweeper({ nc, log, index, bus, logger: logger.child({ role: 'recovery' }) }, limits.stuckAfterMs);
      stuck.start();
      stops.push({ part: 'edge', stop: async () => { await stuck.stop(); await closeServer(); index.close(); keys.close(); } });
      const required = authConfig.mode === 'required';
      // Refusing to listen openly throws here; the caller's stop() leaves nothing running behind the error.
      const bind = bindAddress(authConfig, required || keys.anyKeys);
      if (bind.warning) logger.warn(bind.warning);
      if (bind.note) logger.info(bind.note);
      const deps = { nc, log, bus, index, workflows, idempotency, snapshots, payloads, tenantMaxRunning: authConfig.tenantMaxRunning };
      const app = createEdgeApp({
        config,
        logger,
        metricsRegistry: registry,
        auth: { keys, required, metricsToken: authConfig.metricsToken },
        routers: [workflowsRouter(deps), executionsRouter(deps), schedulesRouter({ schedules, workflows, bus }), keysRouter(keys), createLlmProxyRouter(createLlmRouter(env)), contractsRouter(), uiRouter(env.SMARTSPEC_UI_DIR?.trim() || undefined)],
        readiness: async () => {
          if (nc.isClosed()) return 'NATS connection closed';
          await nc.flush();
          return true;
        },
      });
      edgeApp = app;
      const server = await startEdgeServer(app, config.port, bind.host).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'EADDRINUSE') throw err;
        throw new SmartSpecError('PORT_IN_USE', `port ${config.port} is already in use: set PORT to a free port (PORT=0 picks one)`);
      });
      url = server.url;
      closeServer = async () => { await server.close(); await app.close(); };
      logger.info({ url: server.url, explorer: `${server.url}/ui/` }, 'edge listening');
    }

    return { url, app: edgeApp, engine };
  }
}

/**
 * The CLI's `serve`, `edge` and `worker`: run until SIGINT or SIGTERM, then
 * shut down gracefully (SMARTSPEC_SHUTDOWN_GRACE_MS) and exit 130 (SIGINT) or
 * 0 (SIGTERM: a clean stop, as containers are stopped). A second signal exits
 * at once; executions still held then go to other workers after ACK_WAIT_MS.
 */
export async function runService(roles: { edge: boolean; worker: boolean }, env = process.env): Promise<void> {
  // Listening from the first moment: a signal while the service starts (a worker already
  // consuming, the edge not yet listening) stops what has started, gracefully, without
  // waiting for the rest of the start (which may be slow, or never end).
  let stopper: { stop: (graceMs: number) => Promise<void>; graceMs: number } | undefined;
  let shuttingDown = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    const code = signal === 'SIGINT' ? 130 : 0;
    if (shuttingDown || !stopper) process.exit(code); // a second signal, or nothing started yet
    shuttingDown = true;
    process.stdout.write(`shutting down (${signal}): running steps may finish for ${stopper.graceMs} ms, then running executions continue on another worker\n`);
    await stopper.stop(stopper.graceMs);
    process.exit(code);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  try {
    await startService(roles, env, { onStoppable: (stop, graceMs) => (stopper = { stop, graceMs }) });
  } catch (err) {
    if (shuttingDown) return; // stopped during start-up: the start fails as NATS closes; the shutdown exits
    throw err;
  }
}
