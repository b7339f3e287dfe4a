/**
 * Resuming an execution the moment its end is in the log. Its host has just
 * written ExecutionFailed (or ExecutionCancelled) and is letting go of it; a
 * resume arriving in that moment (the worker that hosts it taking the resume
 * command, the CLI, another worker, the edge's owner check) must go ahead once
 * the host has let go, never be refused as "owned by a live process". The
 * windows are hit every time: the resume starts from inside the onRecord hook
 * of the end record (before the runner has seen its own end), or while the
 * host's log holds back the answer to that append. And a host cut off while
 * another process ended the execution is no owner either.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Definition } from '../../machines/definition.js';
import type { EventLog } from '../../src/log/eventLog.js';
import { loadExecution } from '../../src/log/views.js';
import { pingOwner } from '../../src/worker/control.js';
import type { StoredRecord } from '../../src/log/records.js';
import { defaultExecutors } from '../../src/steps/index.js';
import { Engine } from '../../src/worker/engine.js';
import type { ExecutionRunner } from '../../src/worker/runner.js';
import { def, types, useEngine } from '../support/engine.js';
import { useNatsServer } from '../support/nats.js';
import { plainContext } from '../support/context.js';

const nats = useNatsServer();
const fx = useEngine(nats);
const engines: Engine[] = [];
afterAll(async () => {
  for (const e of engines) await e.close();
});

/** What the hooked engines do on an ExecutionFailed/ExecutionCancelled record (set per test). */
let onEnd: (stored: StoredRecord) => void = () => undefined;

/** An engine whose onRecord calls `onEnd` for each end record, before its runner sees the end. */
async function engineWithEndHook(): Promise<Engine> {
  const engine = await Engine.create({
    nc: fx.nc,
    log: fx.log,
    executors: defaultExecutors(),
    owner: `hooked-${engines.length}`,
    onRecord: (stored) => {
      if (stored.record.type === 'ExecutionFailed' || stored.record.type === 'ExecutionCancelled') onEnd(stored);
    },
  });
  engines.push(engine);
  return engine;
}

let n = 0;
const failing = (): Definition =>
  def({
    id: `resume-after-end-${++n}`,
    steps: [
      { id: 'prepare', type: 'transform', value: { n: 1 } },
      { id: 'check', type: 'fail', message: 'check is broken' },
      { id: 'publish', type: 'transform', value: { checked: '{{steps.check.output}}' } },
    ],
  });
const corrected = { steps: [
  { id: 'prepare', type: 'transform', value: { n: 1 } },
  { id: 'check', type: 'transform', value: { passed: true } },
  { id: 'publish', type: 'transform', value: { checked: '{{steps.check.output}}' } },
] };

/** Start `definition` on `host` (then `end` it, if given); on its end record, `resumer` resumes it. Awaits the resumed run. */
async function resumedOnEnd(host: Engine, definition: Definition, resumer: Engine, request: Parameters<Engine['resume']>[1], end?: (r: ExecutionRunner) => Promise<void>) {
  let resumed!: Promise<ExecutionRunner>;
  const ended = new Promise<void>((res) => (onEnd = (stored) => {
    resumed = resumer.resume(stored.record.executionId, request);
    res();
  }));
  const runner = await host.start({ definition });
  await end?.(runner);
  await ended;
  const outcome = await (await resumed).done;
  return { id: runner.executionId, outcome };
}

describe('resume right as the execution ends', () => {
  it('on the engine that hosts it (the worker taking the resume command, the CLI): the resume waits for the host to let go', async () => {
    const host = await engineWithEndHook();
    for (let i = 0; i < 5; i++) {
      const { id, outcome } = await resumedOnEnd(host, failing(), host, { fromStep: 'check', steps: corrected });
      expect(outcome.status).toBe('COMPLETED');
      expect(plainContext(outcome.snapshot.context).outputs.publish).toEqual({ checked: { passed: true } });
      const { records } = await loadExecution(fx.log, id);
      expect(types(records).filter((t) => t.startsWith('Execution'))).toEqual(['ExecutionStarted', 'ExecutionFailed', 'ExecutionResumed', 'ExecutionCompleted']);
    }
  });

  it('a cancelled execution, likewise', async () => {
    const host = await engineWithEndHook();
    const waiting = () => def({ id: `cancel-then-resume-${++n}`, steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'gate', type: 'signal' }] });
    const { id, outcome } = await resumedOnEnd(host, waiting(), host, { fromStep: 'gate', steps: { steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'gate', type: 'transform', value: 'opened' }] } }, async (runner) => {
      await runner.settled();
      await host.cancel(runner.executionId, 'changed my mind');
    });
    expect(outcome.status).toBe('COMPLETED');
    const { records } = await loadExecution(fx.log, id);
    expect(types(records).filter((t) => t.startsWith('Execution'))).toEqual(['ExecutionStarted', 'ExecutionCancelled', 'ExecutionResumed', 'ExecutionCompleted']);
  });

  it('on another engine (a second worker, the edge) while the host has not yet seen its end appended: no EXECUTION_OWNED', async () => {
    // The host's log answers the append of an end record only after the resume has been started
    // (a busy worker reading the append's answer late): the end is in the log, the host still holds it.
    let started!: () => void;
    let resumeStarted!: Promise<void>;
    const lateLog = Object.create(fx.log) as EventLog;
    lateLog.append = async (body, prev, writer) => {
      const stored = await fx.log.append(body, prev, writer);
      if (body.type === 'ExecutionFailed') {
        onEnd(stored);
        await resumeStarted;
        await new Promise((r) => setTimeout(r, 50)); // the resume's owner check reaches the host meanwhile
      }
      return stored;
    };
    const host = await Engine.create({ nc: fx.nc, log: lateLog, executors: defaultExecutors(), owner: 'slow-host' });
    engines.push(host);
    const other = await fx.engine();
    for (let i = 0; i < 3; i++) {
      resumeStarted = new Promise<void>((res) => (started = res));
      let resumed!: Promise<ExecutionRunner>;
      const ended = new Promise<void>((res) => (onEnd = (stored) => {
        const id = stored.record.executionId;
        // What the edge asks before it accepts a resume: nobody may own a failed execution.
        resumed = pingOwner(fx.nc, id).then((owner) => {
          expect(owner).toBeUndefined();
          return other.resume(id, { fromStep: 'check', steps: corrected });
        });
        setTimeout(started, 20); // the ping is on its way
        res();
      }));
      const runner = await host.start({ definition: failing() });
      await ended;
      expect((await (await resumed).done).status).toBe('COMPLETED');
      expect((await runner.done).status).toBe('FAILED');
    }
  });

  it('a host cut off while another process ended the execution (its log moved on without it) is no owner: it lets go', async () => {
    const host = await fx.engine();
    const other = await fx.engine();
    const slow = def({ id: `cut-off-${++n}`, steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'nap', type: 'sleep', durationMs: 60_000 }] });
    const runner = await host.start({ definition: slow });
    const id = runner.executionId;
    const napping = async () => (await fx.log.read(id)).some((r) => r.record.type === 'StepStarted' && r.record.stepId === 'nap');
    while (!(await napping())) await new Promise((r) => setTimeout(r, 20));
    // What another process that took over (the host unreachable for it) wrote: the execution ended.
    const last = (await fx.log.last(id))!;
    await fx.log.append({ type: 'ExecutionCancelled', reason: 'cancelled elsewhere', executionId: id, workflowId: slow.id, at: new Date().toISOString(), state: 'cancelled' } as never, { seq: last.seq, hash: last.record.hash }, 'another-process');

    expect(await pingOwner(fx.nc, id)).toBeUndefined();
    expect(runner.isStopped).toBe(true);
    const resumed = await other.resume(id, { fromStep: 'nap', steps: { steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'nap', type: 'transform', value: 'rested' }] } });
    expect((await resumed.done).status).toBe('COMPLETED');
  });
});

