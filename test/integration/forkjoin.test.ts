/**
 * Fork-join shapes run on a real nats-server; the order is read back from the
 * event log: every step of a stage starts only after every step of the stage
 * before it completed, and a join step sees the outputs of all its branches.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
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

/**
 * An HTTP server that answers only once `parties` requests are open at the same
 * moment (then all of them, 200); a request still waiting after `giveUpMs` gets
 * 504. Only branches that are really in flight together can all succeed.
 */
async function startBarrierServer(parties: number, giveUpMs: number) {
  const waiting = new Set<ServerResponse>();
  let mostOpenAtOnce = 0;
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    waiting.add(res);
    mostOpenAtOnce = Math.max(mostOpenAtOnce, waiting.size);
    const timer = setTimeout(() => {
      if (!waiting.delete(res)) return;
      res.writeHead(504, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `only ${waiting.size + 1} of ${parties} requests open at once` }));
    }, giveUpMs);
    res.once('close', () => { clearTimeout(timer); waiting.delete(res); });
    if (waiting.size === parties) {
      const open = [...waiting];
      waiting.clear();
      for (const r of open) r.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ together: parties }));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats: () => ({ mostOpenAtOnce, requests }),
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

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
      // branches of a group all start before any of them completes (overlap in time: the http barrier test)
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

  it('runs the branches of a group at the same time: three http branches to a server that answers only when all three are open', async () => {
    const barrier = await startBarrierServer(3, 2000);
    try {
      const engine = await fx.engine();
      const branch = (id: string) => ({ id, type: 'http', request: { method: 'GET', url: `${barrier.url}/${id}` }, retry: { maxAttempts: 1 } });
      const definition = def({
        id: 'overlap',
        steps: [{ id: 'a', type: 'transform', value: 1 }, branch('b'), branch('c'), branch('d'), { id: 'e', type: 'transform', value: '{{steps.b.output.body.together}}' }],
        parallel: [['b', 'c', 'd']],
      });
      const runner = await engine.start({ definition });
      const outcome = await runner.done;
      expect(outcome.status, JSON.stringify(outcome.snapshot.context.error ?? null)).toBe('COMPLETED');
      expect(barrier.stats()).toEqual({ mostOpenAtOnce: 3, requests: 3 });
      expect(plainContext(outcome.snapshot.context).outputs.e).toBe(3);
    } finally {
      await barrier.close();
    }
  });

  it('shows the group as a parallel state with one region per step', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({ definition: shapeDefinition('regions', [['a'], ['b', 'c', 'd'], ['e']]) });
    await runner.done;
    const records = await fx.log.read(runner.executionId);
    const fork = records[indexOf(records, 'StepCompleted', 'a')].record.state;
    expect(fork).toEqual({ running: { 'group(b,c,d)': { b: 'pending', c: 'pending', d: 'pending' } } });
  });

  it('fails the execution when a branch fails, and stops its siblings: the sibling\'s in-flight request is aborted', async () => {
    // /hold never answers (it records when its connection closes); /bad answers 400 once /hold is in flight.
    let holdArrived!: () => void;
    const holdInFlight = new Promise<void>((r) => (holdArrived = r));
    let holdClosed!: () => void;
    const holdAborted = new Promise<void>((r) => (holdClosed = r));
    let holds = 0;
    const server = createServer((req, res) => {
      if (req.url === '/hold') {
        holds++;
        req.socket.once('close', () => holdClosed());
        holdArrived();
      } else void holdInFlight.then(() => res.writeHead(400, { 'content-type': 'text/plain' }).end('broken branch'));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const engine = await fx.engine();
      const definition = def({
        id: 'branch-fails',
        steps: [
          { id: 'a', type: 'transform', value: 1 },
          { id: 'slow', type: 'http', request: { url: `${url}/hold` } },
          { id: 'bad', type: 'http', request: { url: `${url}/bad` } },
          { id: 'z', type: 'transform', value: 2 },
        ],
        parallel: [['slow', 'bad']],
      });
      const runner = await engine.start({ definition });
      const outcome = await runner.done;
      expect(outcome.status).toBe('FAILED');
      // The sibling was stopped: its request's connection closes (it never answers by itself).
      await Promise.race([holdAborted, new Promise((_, rej) => setTimeout(() => rej(new Error('the sibling\'s request was not aborted within 10 s')), 10_000))]);
      expect(holds).toBe(1);
      const records = await fx.log.read(runner.executionId);
      expect(records.at(-1)!.record).toMatchObject({ type: 'ExecutionFailed', stepId: 'bad', error: { code: 'HTTP_400', message: expect.stringContaining('broken branch') } });
      expect(indexOf(records, 'StepCompleted', 'slow')).toBe(-1);
      expect(indexOf(records, 'StepStarted', 'z')).toBe(-1);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
