/**
 * Optimistic concurrency on the event log (real nats-server): two writers on
 * one execution never interleave — exactly one append at a position succeeds,
 * the other gets ConcurrencyError — and a duplicate publish of the same record
 * (same message id) is stored once.
 */
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { countingExecutors, def, indexOf, types, useEngine } from '../support/engine.js';
import { ConcurrencyError, SmartSpecError } from '../../src/errors.js';
import { EXECUTIONS_STREAM, executionSubject } from '../../src/nats/names.js';
import { hashRecord, verifyChain, type LogRecord } from '../../src/log/records.js';
import { replayExecution } from '../../src/log/replay.js';
import { loadExecution, summarize } from '../../src/log/views.js';
import type { Engine } from '../../src/worker/engine.js';
import type { ExecutionRunner } from '../../src/worker/runner.js';
import { plainContext } from '../support/context.js';

const nats = useNatsServer();
const fx = useEngine(nats);

let n = 0;
const newId = (p: string) => `${p}-${++n}-${Date.now()}`;
const definition = def({ id: 'cc', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'transform', value: 2 }] });

type Body = Omit<LogRecord, 'hash'>;
const started = (executionId: string): Body =>
  ({ type: 'ExecutionStarted', definition, input: {}, executionId, workflowId: 'cc', at: new Date().toISOString(), state: { running: { a: 'pending' } } }) as Body;
const stepStarted = (executionId: string, stepId: string, at: string): Body =>
  ({ type: 'StepStarted', stepId, attempt: 1, executionId, workflowId: 'cc', at, state: { running: { a: 'running' } } }) as Body;

async function streamCount(executionId: string): Promise<number> {
  const info = await fx.log.jsm.streams.info(EXECUTIONS_STREAM, { subjects_filter: executionSubject(executionId) });
  return info.state.subjects?.[executionSubject(executionId)] ?? 0;
}

describe('two writers on one execution', () => {
  it('two appends after the same position: exactly one succeeds, the other gets ConcurrencyError', async () => {
    const id = newId('race');
    const first = await fx.log.append(started(id), null);
    const prev = { seq: first.seq, hash: first.record.hash };
    const results = await Promise.allSettled([
      fx.log.append(stepStarted(id, 'a', '2030-01-01T00:00:00.000Z'), prev),
      fx.log.append(stepStarted(id, 'a', '2030-01-01T00:00:00.001Z'), prev), // a different record: another message id
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0].reason).toBeInstanceOf(ConcurrencyError);
    expect(refused[0].reason.code).toBe('CONCURRENT_WRITE');
    expect(refused[0].reason.details).toEqual({ executionId: id, expectedSeq: first.seq });

    const records = await fx.log.read(id);
    expect(records).toHaveLength(2);
    expect(records[1]).toEqual((ok[0] as PromiseFulfilledResult<unknown>).value);
    expect(verifyChain(records)).toEqual([]);
  });

  it('many racing writers: one winner per position, the chain stays linear', async () => {
    const id = newId('many');
    let position = await fx.log.append(started(id), null).then((s) => ({ seq: s.seq, hash: s.record.hash }));
    for (let round = 0; round < 3; round++) {
      const results = await Promise.allSettled(
        Array.from({ length: 6 }, (_, w) => fx.log.append(stepStarted(id, 'a', `2030-01-01T00:00:0${round}.00${w}Z`), position)),
      );
      const winners = results.filter((r) => r.status === 'fulfilled') as PromiseFulfilledResult<Awaited<ReturnType<typeof fx.log.append>>>[];
      expect(winners).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect((r.reason as SmartSpecError).code).toBe('CONCURRENT_WRITE');
      position = { seq: winners[0].value.seq, hash: winners[0].value.record.hash };
    }
    const records = await fx.log.read(id);
    expect(records).toHaveLength(4);
    expect(verifyChain(records)).toEqual([]);
  });

  it('the first record of an execution can be written only once (prev = null)', async () => {
    const id = newId('first');
    const a = started(id);
    const b = { ...started(id), input: { other: true } };
    const results = await Promise.allSettled([fx.log.append(a, null), fx.log.append(b, null)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected')!;
    expect(refused.reason).toBeInstanceOf(ConcurrencyError);
    expect(await streamCount(id)).toBe(1);
  });

  it('an append after a stale position is refused', async () => {
    const id = newId('stale');
    const s1 = await fx.log.append(started(id), null);
    const prev = { seq: s1.seq, hash: s1.record.hash };
    await fx.log.append(stepStarted(id, 'a', '2030-01-01T00:00:00.000Z'), prev);
    await expect(fx.log.append(stepStarted(id, 'a', '2030-01-01T00:00:01.000Z'), prev)).rejects.toMatchObject({ code: 'CONCURRENT_WRITE' });
    expect(await streamCount(id)).toBe(2);
  });

  it('starting the same execution id twice: the second start is refused', async () => {
    const engine = await fx.engine();
    const id = newId('dup-start');
    const runner = await engine.start({ definition, executionId: id });
    await runner.done;
    const other = await fx.engine();
    await expect(other.start({ definition, executionId: id })).rejects.toMatchObject({ code: 'EXECUTION_EXISTS', message: expect.stringContaining('already exists') });
    expect(types(await fx.log.read(id)).filter((t) => t === 'ExecutionStarted')).toHaveLength(1);
  });
});

describe('two engines starting one execution id at once', () => {
  for (let trial = 1; trial <= 3; trial++) {
    it(`exactly one start wins (trial ${trial})`, async () => {
      const id = newId('start-race');
      const a = countingExecutors();
      const b = countingExecutors();
      const engines = [await fx.engine(a.executors), await fx.engine(b.executors)];
      const results = await Promise.allSettled(engines.map((e) => e.start({ definition, executionId: id, input: { same: true } })));
      const won = results.filter((r): r is PromiseFulfilledResult<ExecutionRunner> => r.status === 'fulfilled');
      expect(won).toHaveLength(1);
      expect(results.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason).toMatchObject({ code: 'EXECUTION_EXISTS' });
      expect((await won[0].value.done).status).toBe('COMPLETED');
      // the steps ran once, in one engine
      expect([Object.fromEntries(a.runs), Object.fromEntries(b.runs)]).toContainEqual({});
      expect(replayExecution(id, await fx.log.read(id)).ok).toBe(true);
    });
  }
});

describe('duplicate publishes', () => {
  // A retried publish inside one append() is deduplicated by its message id. But two writers
  // that produce byte-identical records (same event, same millisecond) must not both be told
  // they appended: the second one did not write anything and must get ConcurrencyError.
  it('two writers appending byte-identical records at one position: one copy, exactly one succeeds', async () => {
    const id = newId('same');
    const first = await fx.log.append(started(id), null);
    const prev = { seq: first.seq, hash: first.record.hash };
    const body = stepStarted(id, 'a', '2030-01-01T00:00:00.000Z');
    const results = await Promise.allSettled([fx.log.append(body, prev), fx.log.append(body, prev)]);
    expect(await streamCount(id)).toBe(2);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(refused?.reason).toBeInstanceOf(ConcurrencyError);
  });

  it('appending a record again after it was stored is refused, not reported as a second success', async () => {
    const id = newId('again');
    const body = started(id);
    await fx.log.append(body, null);
    await expect(fx.log.append(body, null)).rejects.toMatchObject({ code: 'CONCURRENT_WRITE' });
    expect(await streamCount(id)).toBe(1);
  });

  it('a raw JetStream publish with a message id already stored is acknowledged as a duplicate and not stored', async () => {
    const id = newId('raw');
    // A writer's retry reuses its message id (record hash + writer id).
    const stored = await fx.log.append(started(id), null, 'writer-1');
    const data = new TextEncoder().encode(JSON.stringify(stored.record));
    const ack = await fx.log.js.publish(executionSubject(id), data, { msgID: `${stored.record.hash}:writer-1` });
    expect(ack.duplicate).toBe(true);
    expect(ack.seq).toBe(stored.seq);
    expect(await streamCount(id)).toBe(1);
    // a different message id is a new message
    const ack2 = await fx.log.js.publish(executionSubject(id), data, { msgID: `${stored.record.hash}-other` });
    expect(ack2.duplicate).toBe(false);
    expect(await streamCount(id)).toBe(2);
  });

  it('the message id is the record hash, which covers the previous hash', () => {
    const body = started('x');
    expect(hashRecord('', body)).not.toBe(hashRecord('abc', body));
    expect(hashRecord('', body)).toBe(hashRecord('', { ...body }));
  });
});

describe('two engines recovering one interrupted execution', () => {
  async function interrupted(tag: string) {
    const crashed = await fx.engine();
    const d = def({ id: 'recover', steps: [{ id: 'a', type: 'transform', value: 'A' }, { id: 'wait', type: 'sleep', durationMs: 150 }, { id: 'b', type: 'transform', value: '{{steps.a.output}}' }] });
    const runner = await crashed.start({ definition: d, executionId: newId(tag) });
    await waitFor(async () => indexOf(await fx.log.read(runner.executionId), 'StepStarted', 'wait') >= 0);
    runner.stop(); // stops hosting without writing: as if the process died
    await runner.done;
    return runner.executionId;
  }

  for (let trial = 1; trial <= 3; trial++) {
    it(`exactly one of two concurrent resumes wins, and the history verifies (trial ${trial})`, async () => {
      const id = await interrupted('two-engines');
      const a = countingExecutors();
      const b = countingExecutors();
      const engines: Engine[] = [await fx.engine(a.executors), await fx.engine(b.executors)];
      const results = await Promise.allSettled(engines.map((e) => e.resume(id)));
      const won = results.filter((r): r is PromiseFulfilledResult<ExecutionRunner> => r.status === 'fulfilled');
      const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      // the loser either lost the append race or saw the winner already hosting it
      expect(['CONCURRENT_WRITE', 'EXECUTION_OWNED']).toContain((lost[0].reason as SmartSpecError).code);

      const outcome = await won[0].value.done;
      expect(outcome.status).toBe('COMPLETED');
      expect(plainContext(outcome.snapshot.context).outputs).toMatchObject({ a: 'A', b: 'A' });
      // only the winner ran steps; each step ran once after the crash (the sleep is a recorded timer, not re-run)
      const runs = [Object.fromEntries(a.runs), Object.fromEntries(b.runs)];
      expect(runs).toContainEqual({ b: 1 });
      expect(runs).toContainEqual({});

      const records = await fx.log.read(id);
      expect(types(records).filter((t) => t === 'ExecutionResumed')).toHaveLength(1);
      expect(records[indexOf(records, 'ExecutionResumed')].record).toMatchObject({ reason: 'recovery' });
      const report = replayExecution(id, records);
      expect(report.chainBreaks).toEqual([]);
      expect(report.ok).toBe(true);
      expect(summarize(await loadExecution(fx.log, id)).status).toBe('COMPLETED');
      // the losing engine hosts nothing
      for (const e of engines) if (e !== engines[results.indexOf(won[0])]) expect(e.runners.has(id)).toBe(false);
    });
  }

  it('a runner that loses its log to another writer stops and writes nothing more', async () => {
    // Engine A hosts an execution; a second writer appends behind its back; A's next append fails.
    const engine = await fx.engine();
    const d = def({ id: 'hijack', steps: [{ id: 'wait', type: 'sleep', durationMs: 200 }, { id: 'b', type: 'transform', value: 1 }] });
    const runner = await engine.start({ definition: d, executionId: newId('hijack') });
    await waitFor(async () => indexOf(await fx.log.read(runner.executionId), 'StepStarted', 'wait') >= 0);
    const last = (await fx.log.last(runner.executionId))!;
    await fx.log.append(
      // Like every writer since principals exist, it names who cancelled (replay requires it once the log has one).
      { type: 'ExecutionCancelled', reason: 'other writer', principal: { tenant: 'default', keyId: 'other-writer' }, executionId: runner.executionId, workflowId: 'hijack', at: new Date().toISOString(), state: 'cancelled' } as Body,
      { seq: last.seq, hash: last.record.hash },
    );
    await expect(runner.done).rejects.toMatchObject({ code: 'CONCURRENT_WRITE' });
    expect(runner.isStopped, 'the runner stopped').toBe(true);
    const records = await fx.log.read(runner.executionId);
    expect(records.at(-1)!.record.type).toBe('ExecutionCancelled');
    expect(indexOf(records, 'StepCompleted', 'wait')).toBe(-1);
    expect(replayExecution(runner.executionId, records).ok).toBe(true);
  });
});

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 15));
  }
}
