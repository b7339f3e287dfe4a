/** Engines and definitions for tests: real NATS (from useNatsServer), real executors. */
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll } from 'vitest';
import { validateDefinition } from '../../src/definition/validate.js';
import type { Definition } from '../../machines/definition.js';
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import type { StoredRecord } from '../../src/log/records.js';
import { defaultExecutors } from '../../src/steps/index.js';
import type { StepExecutors } from '../../src/steps/types.js';
import { Engine } from '../../src/worker/engine.js';
import type { NatsFixture } from './nats.js';
import { plainContext } from './context.js';

export const def = (d: unknown): Definition => validateDefinition(d);

/** The built-in executors, counting how often each step actually ran. */
export function countingExecutors(): { executors: StepExecutors; runs: Map<string, number> } {
  const runs = new Map<string, number>();
  const base = defaultExecutors();
  const executors: StepExecutors = {};
  for (const [type, exec] of Object.entries(base)) {
    (executors as Record<string, unknown>)[type] = async (run: { step: { id: string } }) => {
      runs.set(run.step.id, (runs.get(run.step.id) ?? 0) + 1);
      return (exec as (r: unknown) => Promise<unknown>)(run);
    };
  }
  return { executors, runs };
}

export interface EngineFixture { nc: NatsConnection; log: EventLog; engine(executors?: StepExecutors): Promise<Engine> }

/** A connection and event log for the file's server, and engines closed after the file. */
export function useEngine(nats: NatsFixture): EngineFixture {
  const engines: Engine[] = [];
  const fx = {} as EngineFixture;
  beforeAll(async () => {
    fx.nc = await connectNats(nats.url, 'test');
    fx.log = await EventLog.open(fx.nc);
    fx.engine = async (executors?: StepExecutors) => {
      const e = await Engine.create({ nc: fx.nc, log: fx.log, executors: executors ?? defaultExecutors() });
      engines.push(e);
      return e;
    };
  });
  afterAll(async () => {
    for (const e of engines) await e.close();
    await fx.nc?.close();
  });
  return fx;
}

export const types = (records: StoredRecord[]) => records.map((r) => r.record.type);
export const stepEvents = (records: StoredRecord[], type: string) =>
  records.filter((r) => r.record.type === type).map((r) => (r.record as { stepId?: string }).stepId);

/** Index of the first record matching type and step. */
export function indexOf(records: StoredRecord[], type: string, stepId?: string): number {
  return records.findIndex((r) => r.record.type === type && (stepId === undefined || (r.record as { stepId?: string }).stepId === stepId));
}

/** Start `d` on `engine` and wait for its end: its outcome, its records, and its outputs as a plain object. */
export async function runToEnd(engine: Engine, log: EventLog, d: unknown, input: unknown = {}) {
  const runner = await engine.start({ definition: def(d), input });
  const outcome = await runner.done;
  const records = await log.read(runner.executionId);
  return { outcome, records, outputs: plainContext(outcome.snapshot.context).outputs, id: runner.executionId };
}
