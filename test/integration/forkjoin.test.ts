/**
 * Fork-join shapes run on a real nats-server; the order is read back from the
 * event log: every step of a stage starts only after every step of the stage
 * before it completed, and a join step sees the outputs of all its branches.
 */
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { def, indexOf, useEngine } from '../support/engine.js';
import { replayExecution } from '../../src/log/replay.js';
import { plainContext } from '../support/context.js';

const nats = useNatsServer();
const fx = useEngine(nats);

/** Stages as lists of step ids; groups of one are parallel groups too when marked. */
const SHAPES: Record<string, { stages: string[][]; groupsOfOne?: string[] }> = {
  'no groups': { stages: [['a'], ['b'], ['c']] },
  'one group in the middle (A → {B,C,D} → E)': { stages: [['a'], ['b', 'c', 'd'], ['e']] },
  'group at the start': { stages: [['a', 'b'], ['c']] },
  'group at the end': { stages: [['a'], ['b', 'c']] },
  'group of one': { stages: [['a'], ['b'], ['c']], groupsOfOne: ['b'] },
  'two groups': { stages: [['a'], ['b', 'c'], ['d'], ['e', 'f', 'g'], ['h']] },
  'two adjacent groups': { stages: [['a', 'b'], ['c', 'd']] },
  'every step parallel': { stages: [['a', 'b', 'c', 'd']] },
};

function shapeDefinition(name: string, stages: string[][], groupsOfOne: string[] = []) {
  const steps = stages.flatMap((stage, i) =>
    stage.map((id) => ({
      id,
      // Branches sleep a little, longest first, so they overlap and finish out of order.
      ...(stage.length > 1 && stage.indexOf(id) === 0
        ? { type: 'sleep', durationMs: 60 }
        : { type: 'transform', value: { id, saw: Object.fromEntries((stages[i - 1] ?? []).map((p) => [p, `{{steps.${p}.output}}`])) } }),
    })),
  );
  const parallel = [...stages.filter((s) => s.length > 1), ...groupsOfOne.map((id) => [id])];
  return def({ id: name.replace(/[^a-z]+/gi, '-').replace(/^-|-$/g, ''), steps, parallel });
}

describe('fork-join', () => {
  for (const [name, shape] of Object.entries(SHAPES)) {
    it(name, async () => {
      const engine = await fx.engine();
      const definition = shapeDefinition(name, shape.stages, shape.groupsOfOne);
      const runner = await engine.start({ definition, input: {} });
      const outcome = await runner.done;
      expect(outcome.status).toBe('COMPLETED');

      const records = await fx.log.read(runner.executionId);
      // every step ran exactly once
      for (const id of shape.stages.flat()) {
        expect(records.filter((r) => r.record.type === 'StepStarted' && (r.record as { stepId?: string }).stepId === id)).toHaveLength(1);
      }
      // fork and join: a stage starts after all of the previous stage completed
      for (let i = 1; i < shape.stages.length; i++) {
        const lastCompletion = Math.max(...shape.stages[i - 1].map((id) => indexOf(records, 'StepCompleted', id)));
        for (const id of shape.stages[i]) expect(indexOf(records, 'StepStarted', id)).toBeGreaterThan(lastCompletion);
      }
      // branches of a group all start before any of them completes (they run concurrently)
      for (const stage of shape.stages.filter((s) => s.length > 1)) {
        const lastStart = Math.max(...stage.map((id) => indexOf(records, 'StepStarted', id)));
        const firstDone = Math.min(...stage.map((id) => indexOf(records, 'StepCompleted', id)));
        expect(lastStart).toBeLessThan(firstDone);
      }
      // outputs of all branches reach the step after them
      const outputs = plainContext(outcome.snapshot.context).outputs as Record<string, { saw?: Record<string, unknown> }>;
      for (let i = 1; i < shape.stages.length; i++) {
        for (const id of shape.stages[i]) {
          if (!outputs[id]?.saw) continue; // sleeping branch
          expect(Object.keys(outputs[id].saw!).sort()).toEqual([...shape.stages[i - 1]].sort());
          for (const p of shape.stages[i - 1]) expect(outputs[id].saw![p]).toEqual(outputs[p]);
        }
      }
      expect(records.at(-1)!.record.type).toBe('ExecutionCompleted');
      expect(replayExecution(runner.executionId, records).ok).toBe(true);
    });
  }

  it('shows the group as a parallel state with one region per step', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({ definition: shapeDefinition('regions', [['a'], ['b', 'c', 'd'], ['e']]) });
    await runner.done;
    const records = await fx.log.read(runner.executionId);
    const fork = records[indexOf(records, 'StepCompleted', 'a')].record.state;
    expect(fork).toEqual({ running: { 'group(b,c,d)': { b: 'pending', c: 'pending', d: 'pending' } } });
  });

  it('fails the execution when a branch fails, and stops its siblings', async () => {
    const engine = await fx.engine();
    const definition = def({
      id: 'branch-fails',
      steps: [
        { id: 'a', type: 'transform', value: 1 },
        { id: 'slow', type: 'sleep', durationMs: 5000 },
        { id: 'bad', type: 'fail', message: 'broken branch' },
        { id: 'z', type: 'transform', value: 2 },
      ],
      parallel: [['slow', 'bad']],
    });
    const started = Date.now();
    const runner = await engine.start({ definition });
    const outcome = await runner.done;
    expect(outcome.status).toBe('FAILED');
    expect(Date.now() - started).toBeLessThan(4000); // the sleeping sibling was aborted
    const records = await fx.log.read(runner.executionId);
    expect(records.at(-1)!.record).toMatchObject({ type: 'ExecutionFailed', stepId: 'bad', error: { message: 'broken branch' } });
    expect(indexOf(records, 'StepStarted', 'z')).toBe(-1);
  });
});
