/**
 * A long definition (issue 9, "nothing grows without bound"): 5,000 transform
 * steps run to COMPLETED, their history folds back (a status read, a
 * recovery) and a resume from the middle continues to the end. Before the
 * machine's maps were made persistent, each transition copied every earlier
 * step's output, and the fold kept one such copy per checkpoint: quadratic in
 * time and memory, so a definition of this size never finished (and died
 * again on every recovery).
 */
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../../support/nats.js';
import { def, useEngine } from '../../support/engine.js';
import { loadExecution, summarize } from '../../../src/log/views.js';
import { SnapshotStore } from '../../../src/log/snapshots.js';
import { Engine } from '../../../src/worker/engine.js';
import { defaultExecutors } from '../../../src/steps/index.js';

const nats = useNatsServer();
const fx = useEngine(nats);
const STEPS = 5_000;

/** Each step reads the one before it, so every output is looked up at run time. */
function longDefinition(id: string) {
  return def({
    id,
    steps: Array.from({ length: STEPS }, (_, i) => ({ id: `s${i}`, type: 'transform', value: i === 0 ? { i: 0 } : { prev: `{{steps.s${i - 1}.output.i}}`, i } })),
  });
}

describe(`a definition of ${STEPS.toLocaleString('en')} steps`, () => {
  it('runs to COMPLETED, and its history folds back', { timeout: 240_000 }, async () => {
    const engine = await fx.engine();
    const runner = await engine.start({ definition: longDefinition('long'), input: {} });
    const outcome = await runner.done;
    expect(outcome.status).toBe('COMPLETED');

    const loaded = await loadExecution(fx.log, runner.executionId);
    expect(loaded.records).toHaveLength(2 * STEPS + 2);
    const summary = summarize(loaded);
    expect(summary.status).toBe('COMPLETED');
    expect(Object.keys(summary.steps)).toHaveLength(STEPS);
    expect(summary.steps.s4999.output).toEqual({ prev: 4998, i: 4999 });
    expect(summary.steps.s1.attempts).toBe(1);
  });

  it('recovers after its host stops half-way (from the nearest snapshot), and completes', { timeout: 240_000 }, async () => {
    const snapshots = await SnapshotStore.open(fx.nc);
    let seen = 0;
    let halfway!: () => void;
    const reached = new Promise<void>((res) => (halfway = res));
    const first = await Engine.create({ nc: fx.nc, log: fx.log, snapshots, executors: defaultExecutors(), onRecord: () => ++seen === STEPS && halfway() });
    const runner = await first.start({ definition: longDefinition('long-recovered'), input: {} });
    await reached;
    await first.close(); // the host goes away mid-run; the log stays as recorded

    const second = await Engine.create({ nc: fx.nc, log: fx.log, snapshots, executors: defaultExecutors() });
    try {
      const resumed = await second.resume(runner.executionId);
      const outcome = await resumed.done;
      expect(outcome.status).toBe('COMPLETED');
      const summary = summarize(await loadExecution(fx.log, runner.executionId));
      expect(summary.status).toBe('COMPLETED');
      expect(summary.steps.s4999.phase).toBe('done');
      // completed steps were not run again: one StepCompleted per step across both hosts
      const records = (await loadExecution(fx.log, runner.executionId)).records;
      expect(records.filter((r) => r.record.type === 'StepCompleted')).toHaveLength(STEPS);
    } finally {
      await second.close();
    }
  });
});
