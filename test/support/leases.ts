/** In-process workers with concurrency and rate keys (src/concurrency), on a test's nats-server. */
import pino from 'pino';
import type { NatsConnection } from '@nats-io/transport-node';
import { CommandBus } from '../../src/bus/commands.js';
import { Admission } from '../../src/concurrency/admission.js';
import { LeaseStore } from '../../src/concurrency/leaseStore.js';
import { connectNats } from '../../src/nats/connect.js';
import type { StepExecutors } from '../../src/steps/types.js';
import { TimerStore } from '../../src/timers/timerStore.js';
import { Engine } from '../../src/worker/engine.js';
import { Worker } from '../../src/worker/worker.js';

export interface TestWorker { nc: NatsConnection; bus: CommandBus; engine: Engine; admission: Admission; stop(): Promise<void> }

export async function startLeaseWorker(url: string, name: string, options: { executors?: StepExecutors; ttlMs?: number; ackWaitMs?: number; concurrency?: number } = {}): Promise<TestWorker> {
  const nc = await connectNats(url, name);
  const ackWaitMs = options.ackWaitMs ?? 2000;
  const bus = await CommandBus.open(nc, { consumer: { ackWaitMs } });
  const timers = await TimerStore.open(nc);
  const admission = new Admission(await LeaseStore.open(nc), (w, key, msgId) => bus.publish('wake', { executionId: w.executionId, key, holder: w.id }, msgId), { ttlMs: options.ttlMs ?? 3000, onError: (err, what) => console.error(`[${name}] ${what}: ${(err as Error).message}`) });
  const engine = await Engine.create({ nc, timers, admission, owner: name, ...(options.executors ? { executors: options.executors } : {}) });
  const worker = new Worker({ engine, bus, timers, logger: pino({ level: process.env.TEST_LOG ?? 'silent' }), ackWaitMs, ...(options.concurrency ? { concurrency: options.concurrency } : {}) });
  await worker.start();
  return {
    nc, bus, engine, admission,
    stop: async () => {
      await worker.stop();
      await admission.close();
      await nc.close();
    },
  };
}
