/**
 * NATS_REPLICAS for streams that already exist: creating a stream or bucket
 * takes the replica count, but opening an existing one leaves it as it is. So
 * a first command without NATS_REPLICAS on a cluster made single-replica
 * streams, and later ones asking for 3 silently kept 1. When NATS_REPLICAS is
 * set, every SmartSpec stream (event log, commands, KV buckets) is brought to
 * it; when it is unset, existing streams are left alone (never reduced by an
 * omission).
 */
import { JetStreamApiError, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { SmartSpecError } from '../errors.js';
import { ConfigError } from '../edge/config.js';
import { EXECUTION_INDEX_BUCKET, IDEMPOTENCY_BUCKET, SNAPSHOTS_BUCKET, WORKFLOWS_BUCKET } from './names.js';
import { Partitions } from './partitions.js';

const BUCKET_STREAMS = [WORKFLOWS_BUCKET, EXECUTION_INDEX_BUCKET, IDEMPOTENCY_BUCKET, SNAPSHOTS_BUCKET].map((b) => `KV_${b}`);

const REPLICATION_WAIT_MS = 30_000;

/** NATS_REPLICAS when set (1-5), else undefined. */
export function replicasFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.NATS_REPLICAS?.trim();
  if (!raw) return undefined;
  const parsed = z.coerce.number().int().min(1).max(5).safeParse(raw);
  if (!parsed.success) throw new ConfigError([{ variable: 'NATS_REPLICAS', message: `expected a whole number from 1 to 5, got '${raw}'` }]);
  return parsed.data;
}

/** Bring the existing SmartSpec streams (every partition's) to `replicas`; `notify` hears each change. */
export async function reconcileReplicas(nc: NatsConnection, replicas: number, notify: (message: string) => void, partitions = Partitions.fromEnv()): Promise<void> {
  const jsm = await jetstreamManager(nc);
  for (const name of [...partitions.streams(), ...BUCKET_STREAMS]) {
    let current: number;
    try {
      current = (await jsm.streams.info(name)).config.num_replicas;
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10059) continue; // not created (yet): made with NATS_REPLICAS
      throw err;
    }
    if (current === replicas) continue;
    try {
      await jsm.streams.update(name, { num_replicas: replicas });
    } catch (err) {
      throw new SmartSpecError('NATS_REPLICAS', `NATS_REPLICAS=${replicas}, but stream ${name} has ${current} replica(s) and the server refused to change it: ${(err as Error).message}`);
    }
    notify(`NATS_REPLICAS=${replicas}: stream ${name} changed from ${current} to ${replicas} replica(s)`);
    await untilReplicated(jsm, name, replicas);
  }
}

/** After a change, the stream serves reads only once it has a leader and its replicas have caught up. */
async function untilReplicated(jsm: JetStreamManager, name: string, replicas: number): Promise<void> {
  const deadline = Date.now() + REPLICATION_WAIT_MS;
  for (;;) {
    const cluster = await jsm.streams.info(name).then((si) => si.cluster, () => undefined);
    const peers = cluster?.replicas ?? [];
    if (cluster?.leader && peers.length === replicas - 1 && peers.every((p) => p.current)) return;
    if (Date.now() > deadline) throw new SmartSpecError('NATS_REPLICAS', `stream ${name} was changed to ${replicas} replica(s) but has not caught up within ${REPLICATION_WAIT_MS / 1000} s; try again shortly`, { retryable: true });
    await new Promise((r) => setTimeout(r, 100));
  }
}
