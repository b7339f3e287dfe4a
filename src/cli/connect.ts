/**
 * The NATS side of a command: the connection (NATS_URL, or the data folder's
 * embedded nats-server), held for the command's life and released on the way
 * out, also when Ctrl-C or SIGTERM ends it. Nothing here loads the engine,
 * the edge or the LLM layer: read-only commands start fast.
 */
import { openNats, type NatsHandle } from '../nats/embedded.js';
import { reconcileReplicas, replicasFromEnv } from '../nats/replicas.js';
import { EventLog } from '../log/eventLog.js';
import { payloadLimitsFromEnv } from '../payloads/config.js';
import { PayloadStore } from '../payloads/store.js';
import { ExecutionIndex } from '../registry/executionIndex.js';
import { err, interrupt } from './io.js';

export type CliNats = NatsHandle & { replicas: number };

export async function withNats<T>(fn: (h: CliNats) => Promise<T>): Promise<T> {
  const replicas = replicasFromEnv();
  const handle = await openNats(`smartspec-cli:${process.pid}`, process.env, process.argv.slice(2).join(' '));
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupt.code !== undefined) process.exit(interrupt.code); // a second Ctrl-C: at once
    interrupt.code = signal === 'SIGINT' ? 130 : 143;
    // A hosted execution is stopped (it stays as recorded) and the command unwinds, releasing
    // NATS; anything else has nothing to finish. Either way, never hang on the way out.
    const stopping = interrupt.onInterrupt?.() ?? Promise.resolve();
    void stopping.finally(() => setTimeout(() => void handle.close().finally(() => process.exit(interrupt.code)), interrupt.onInterrupt ? 5000 : 0));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (replicas !== undefined) await reconcileReplicas(handle.nc, replicas, (m) => err(`note: ${m}`));
    return await fn({ ...handle, replicas: replicas ?? 1 });
  } finally {
    await handle.close();
  }
}

export interface LogAccess {
  log: EventLog;
  payloads: PayloadStore;
  index: ExecutionIndex;
}

/**
 * The event log, the payload store and the execution index. Reads of one
 * execution start at its first record (from the index) rather than scanning
 * the stream from the beginning.
 */
export async function withLog<T>(fn: (access: LogAccess) => Promise<T>): Promise<T> {
  return withNats(async ({ nc, replicas }) => {
    const index = await ExecutionIndex.open(nc, replicas);
    const log = await EventLog.open(nc, { replicas, startOf: async (id) => (await index.get(id))?.firstSeq });
    try {
      return await fn({ log, payloads: new PayloadStore(nc, { limits: payloadLimitsFromEnv(), replicas }), index });
    } finally {
      index.close();
    }
  });
}
