/**
 * Records per execution are bounded (issue 9): a step that fails and is
 * retried without delay up to a million times used to append thousands of
 * records a second for ever. At the limit the execution ends FAILED with
 * HISTORY_LIMIT (not retryable) as its last record, the history stays a
 * verifying chain, and a resume that would go past the limit is refused.
 */
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../../support/nats.js';
import { def, useEngine } from '../../support/engine.js';
import { replayExecution } from '../../../src/log/replay.js';
import { SnapshotStore } from '../../../src/log/snapshots.js';
import { Engine } from '../../../src/worker/engine.js';
import { defaultExecutors } from '../../../src/steps/index.js';
import { SmartSpecError } from '../../../src/errors.js';

const nats = useNatsServer();
const fx = useEngine(nats);
const LIMIT = 120;

const runaway = (id: string) =>
  def({
    id,
    steps: [
      { id: 'prepare', type: 'transform', value: 1 },
      { id: 'flaky', type: 'fail', message: 'never works', retryable: true, retry: { maxAttempts: 1_000_000, initialDelayMs: 0 } },
      { id: 'after', type: 'transform', value: 2 },
    ],
  });

describe('records per execution', () => {
  it('a retry storm ends FAILED with HISTORY_LIMIT as the last record the history may hold', async () => {
    const engine = await Engine.create({ nc: fx.nc, log: fx.log, executors: defaultExecutors(), historyLimit: LIMIT });
    try {
      const runner = await engine.start({ definition: runaway('runaway'), input: {} });
      const outcome = await runner.done;
      expect(outcome.status).toBe('FAILED');
      expect(outcome.snapshot.context.error).toMatchObject({ code: 'HISTORY_LIMIT', retryable: false, details: { limit: LIMIT, records: LIMIT } });
      expect(outcome.snapshot.context.error!.message).toContain('limit of 120 records');

      const records = await fx.log.read(runner.executionId);
      expect(records).toHaveLength(LIMIT);
      const last = records[records.length - 1].record;
      expect(last.type).toBe('ExecutionFailed');
      expect(last).toMatchObject({ stepId: 'flaky', error: { code: 'HISTORY_LIMIT', retryable: false } });
      // Nothing was appended after it (the storm really stopped), and the chain verifies.
      await new Promise((r) => setTimeout(r, 300));
      expect(await fx.log.read(runner.executionId)).toHaveLength(LIMIT);
      expect(replayExecution(runner.executionId, records).ok).toBe(true);

      // A resume would need room for its own record and an ending: refused, naming the limit.
      const err = await engine.resume(runner.executionId).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SmartSpecError);
      expect(err).toMatchObject({ code: 'HISTORY_LIMIT' });
      expect((err as Error).message).toMatch(/has 120 records, at the limit of 120/);
    } finally {
      await engine.close();
    }
  });

  it('the count carries over a recovery (from a snapshot), so a resumed storm stops at the same limit', async () => {
    const snapshots = await SnapshotStore.open(fx.nc);
    const limit = 1_200; // past SNAPSHOT_EVERY, so the recovery reads the count from a snapshot
    let seen = 0;
    let stop!: () => void;
    const halfway = new Promise<void>((res) => (stop = res));
    const first = await Engine.create({ nc: fx.nc, log: fx.log, snapshots, executors: defaultExecutors(), historyLimit: limit, onRecord: () => ++seen === 700 && stop() });
    const runner = await first.start({ definition: runaway('runaway-recovered'), input: {} });
    await halfway;
    await first.close();

    const second = await Engine.create({ nc: fx.nc, log: fx.log, snapshots, executors: defaultExecutors(), historyLimit: limit });
    try {
      const outcome = await (await second.resume(runner.executionId)).done;
      expect(outcome.status).toBe('FAILED');
      expect(outcome.snapshot.context.error?.code).toBe('HISTORY_LIMIT');
      expect(await fx.log.read(runner.executionId)).toHaveLength(limit);
    } finally {
      await second.close();
    }
  });

  it('a history that fits exactly ends as it should: the last slot is its own ending', async () => {
    // ExecutionStarted, 2 × (StepStarted, StepCompleted), ExecutionCompleted: 6 records.
    const engine = await Engine.create({ nc: fx.nc, log: fx.log, executors: defaultExecutors(), historyLimit: 6 });
    try {
      const runner = await engine.start({ definition: def({ id: 'fits', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'transform', value: 2 }] }) });
      expect((await runner.done).status).toBe('COMPLETED');
      expect(await fx.log.read(runner.executionId)).toHaveLength(6);
    } finally {
      await engine.close();
    }
  });
});
