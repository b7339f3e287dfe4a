/**
 * Replay for audit on a real nats-server: a real execution's log verifies
 * event by event; a tampered log does not — a record deleted from the stream,
 * a forged record appended to the subject, a record edited in memory — and the
 * report says where.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { useNatsServer } from '../support/nats.js';
import { def, indexOf, useEngine } from '../support/engine.js';
import { replayExecution } from '../../src/log/replay.js';
import { hashRecord, verifyChain, type LogRecord, type StoredRecord } from '../../src/log/records.js';
import { EXECUTIONS_STREAM, executionSubject } from '../../src/nats/names.js';
import { loadExecution } from '../../src/log/views.js';
import { EventLog } from '../../src/log/eventLog.js';

const nats = useNatsServer();
const fx = useEngine(nats);

const definition = def({
  id: 'audited',
  steps: [
    { id: 'draft', type: 'transform', value: { text: 'spec for {{input.feature}}' } },
    { id: 'security', type: 'transform', value: { ok: true } },
    { id: 'perf', type: 'sleep', durationMs: 20 },
    { id: 'flaky', type: 'fail', message: 'once', retryable: true, retry: { maxAttempts: 2, initialDelayMs: 5 }, onError: 'continue' },
    { id: 'merge', type: 'transform', value: { draft: '{{steps.draft.output.text}}', security: '{{steps.security.output}}' } },
  ],
  parallel: [['security', 'perf']],
});

/** A fresh completed execution and its records. */
async function execution(): Promise<{ id: string; records: StoredRecord[] }> {
  const engine = await fx.engine();
  const runner = await engine.start({ definition, input: { feature: 'export' } });
  expect((await runner.done).status).toBe('COMPLETED');
  return { id: runner.executionId, records: await fx.log.read(runner.executionId) };
}

const clone = (records: StoredRecord[]): StoredRecord[] => structuredClone(records);

describe('replay of an untouched log', () => {
  let id: string;
  let records: StoredRecord[];
  beforeAll(async () => ({ id, records } = await execution()));

  it('verifies every event, recomputing the state each record carries', () => {
    const report = replayExecution(id, records);
    expect(report.ok).toBe(true);
    expect(report.chainBreaks).toEqual([]);
    expect(report.events).toHaveLength(records.length);
    records.forEach((r, i) => {
      const e = report.events[i];
      expect(e).toMatchObject({ seq: r.seq, type: r.record.type, ok: true });
      expect(e.recomputed).toEqual(r.record.state);
      expect(e.error).toBeUndefined();
    });
    // it covered retries, the fork, the join and the end
    expect(report.events.filter((e) => e.type === 'StepFailed')).toHaveLength(2);
    expect(report.events.at(-1)).toMatchObject({ type: 'ExecutionCompleted', recomputed: 'completed' });
  });

  it('the chain links every record to the one before it', () => {
    let prev = '';
    for (const { record } of records) {
      expect(record.hash).toBe(hashRecord(prev, record));
      prev = record.hash;
    }
  });

  it('an empty log does not verify', () => {
    expect(replayExecution(id, []).ok).toBe(false);
  });

  it("another execution's log does not verify as this one", () => {
    const report = replayExecution('someone-else', records);
    expect(report.ok).toBe(false);
    expect(report.events[0].error).toMatch(/belongs to execution/);
  });
});

describe('a tampered log is reported', () => {
  it('(a) a record deleted from the stream: the chain breaks at the record after it', async () => {
    const { id, records } = await execution();
    const victim = records[indexOf(records, 'StepCompleted', 'security')];
    expect(await fx.log.jsm.streams.deleteMessage(EXECUTIONS_STREAM, victim.seq)).toBe(true);

    const after = await fx.log.read(id);
    expect(after).toHaveLength(records.length - 1);
    expect(after.map((r) => r.seq)).not.toContain(victim.seq);
    const report = replayExecution(id, after);
    expect(report.ok).toBe(false);
    const next = records[records.indexOf(victim) + 1];
    expect(report.chainBreaks.map((b) => b.seq)).toEqual([next.seq]);
    // and the states no longer follow: the join is never reached the way the log says
    expect(report.events.some((e) => !e.ok)).toBe(true);
  });

  describe('(a) a record deleted from a resumed history', () => {
    /** A history with a resume: the ExecutionResumed record rebuilds from a checkpoint that the deletion corrupts. */
    async function tamperedResumedHistory() {
      const engine = await fx.engine();
      const d = def({
        id: 'resumed',
        steps: [{ id: 'build', type: 'transform', value: 1 }, { id: 'lint', type: 'transform', value: 2 }, { id: 'types', type: 'sleep', durationMs: 10 }, { id: 'tests', type: 'fail', message: 'red' }],
        parallel: [['lint', 'types']],
      });
      const runner = await engine.start({ definition: d });
      expect((await runner.done).status).toBe('FAILED');
      const fixed = { steps: [...d.steps.slice(0, 3), { id: 'tests', type: 'transform', value: 'green' }], parallel: [['lint', 'types']] };
      expect((await (await engine.resume(runner.executionId, { fromStep: 'tests', steps: fixed })).done).status).toBe('COMPLETED');
      const records = await fx.log.read(runner.executionId);
      expect(replayExecution(runner.executionId, records).ok).toBe(true);
      const victim = records[indexOf(records, 'StepStarted', 'lint')];
      await fx.log.jsm.streams.deleteMessage(EXECUTIONS_STREAM, victim.seq);
      return { id: runner.executionId, records, victim };
    }

    it('replay reports it (chain break, failed events) instead of throwing', async () => {
      const { id, records, victim } = await tamperedResumedHistory();
      const after = await fx.log.read(id);
      const report = replayExecution(id, after);
      expect(report.ok).toBe(false);
      expect(report.chainBreaks.map((b) => b.seq)).toEqual([records[records.indexOf(victim) + 1].seq]);
      const resumed = report.events.find((e) => e.type === 'ExecutionResumed')!;
      expect(resumed.ok).toBe(false);
      expect(resumed.error).toBeTruthy();
    });

    // Loading such a log (for status or resume) must say the log does not verify — TamperedLogError,
    // code LOG_TAMPERED, which the edge already maps — not an unrelated resume refusal. Loaded by
    // another process: the one that wrote the history keeps it (src/log/recentHistories.ts) and
    // loads what it wrote; replay, as above, always reads the stream.
    it('loading it fails with LOG_TAMPERED, not a misleading resume error', async () => {
      const { id } = await tamperedResumedHistory();
      const elsewhere = await EventLog.open(fx.nc);
      const err = await loadExecution(elsewhere, id).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ code: 'LOG_TAMPERED' });
    });
  });

  it('(a) the first record deleted: nothing verifies', async () => {
    const { id, records } = await execution();
    await fx.log.jsm.streams.deleteMessage(EXECUTIONS_STREAM, records[0].seq);
    const report = replayExecution(id, await fx.log.read(id));
    expect(report.ok).toBe(false);
    expect(report.chainBreaks[0].seq).toBe(records[1].seq);
    expect(report.events.every((e) => !e.ok)).toBe(true);
    expect(report.events[0].error).toMatch(/does not begin with ExecutionStarted/);
  });

  it('(b) a forged record with an edited output appended to the subject: the chain breaks', async () => {
    const { id, records } = await execution();
    const last = records.at(-1)!;
    const forged = { ...last.record, output: { draft: 'forged' } } as LogRecord; // keeps the old hash
    await fx.log.js.publish(executionSubject(id), new TextEncoder().encode(JSON.stringify(forged)), { expect: { lastSubjectSequence: last.seq } });

    const after = await fx.log.read(id);
    expect(after).toHaveLength(records.length + 1);
    const report = replayExecution(id, after);
    expect(report.ok).toBe(false);
    expect(report.chainBreaks.map((b) => b.seq)).toEqual([after.at(-1)!.seq]);
    // the forged completion does not apply after the execution already completed
    expect(report.events.at(-1)).toMatchObject({ ok: false, type: 'ExecutionCompleted' });
  });

  it('(b) a forged record with a correct hash but a false state: the state mismatch is reported', async () => {
    // an execution left mid-step (its host gone); the forger appends its completion with a valid
    // hash and an edited output, claiming a state the machine does not reach from that event
    const engine = await fx.engine();
    const d = def({ id: 'forged', steps: [{ id: 'wait', type: 'sleep', durationMs: 5000 }, { id: 'pay', type: 'transform', value: { amount: 10 } }] });
    const runner = await engine.start({ definition: d });
    let records: StoredRecord[] = [];
    for (let i = 0; i < 200 && indexOf(records, 'StepStarted', 'wait') < 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      records = await fx.log.read(runner.executionId);
    }
    runner.stop();
    await runner.done;
    const last = records.at(-1)!;
    const body = { type: 'StepCompleted', stepId: 'wait', attempt: 1, output: { amount: 1_000_000 }, executionId: runner.executionId, workflowId: 'forged', at: new Date().toISOString(), state: 'completed' } as Omit<LogRecord, 'hash'>;
    const stored = await fx.log.append(body, { seq: last.seq, hash: last.record.hash });

    const report = replayExecution(runner.executionId, await fx.log.read(runner.executionId));
    expect(report.chainBreaks).toEqual([]); // the forger knew how to hash…
    expect(report.ok).toBe(false); // …but the recorded state is not what the events give
    expect(report.events.find((e) => e.seq === stored.seq)).toMatchObject({ ok: false, recorded: 'completed', recomputed: { running: { pay: 'pending' } }, error: expect.stringMatching(/differs/) });
    expect(report.events.filter((e) => !e.ok)).toHaveLength(1);
  });

  it('(b) a forged event that the machine cannot take is reported', async () => {
    const { id, records } = await execution();
    const last = records.at(-1)!;
    const body = { type: 'StepCompleted', stepId: 'draft', attempt: 1, output: 'again', executionId: id, workflowId: 'audited', at: new Date().toISOString(), state: 'completed' } as Omit<LogRecord, 'hash'>;
    const stored = await fx.log.append(body, { seq: last.seq, hash: last.record.hash });
    const report = replayExecution(id, await fx.log.read(id));
    expect(report.chainBreaks).toEqual([]);
    expect(report.ok).toBe(false);
    expect(report.events.find((e) => e.seq === stored.seq)).toMatchObject({ ok: false, error: expect.stringMatching(/does not apply/) });
  });

  it('(c) a record edited in memory (output changed): the chain breaks at exactly that record', async () => {
    const { id, records } = await execution();
    for (const [type, stepId] of [['StepCompleted', 'draft'], ['StepCompleted', 'merge'], ['ExecutionCompleted', undefined]] as const) {
      const edited = clone(records);
      const i = indexOf(edited, type, stepId);
      (edited[i].record as { output?: unknown }).output = { text: 'edited' };
      const report = replayExecution(id, edited);
      expect(report.ok).toBe(false);
      expect(report.chainBreaks).toEqual([expect.objectContaining({ seq: edited[i].seq, index: i, found: records[i].record.hash })]);
      expect(verifyChain(edited).map((b) => b.index)).toEqual([i]);
    }
  });

  it('(c) other edits in memory: a state, a time, an input, reordered records', async () => {
    const { id, records } = await execution();
    const edits: ((r: StoredRecord[]) => void)[] = [
      (r) => { r[2].record.state = 'completed'; },
      (r) => { r[3].record.at = '1999-01-01T00:00:00.000Z'; },
      (r) => { (r[0].record as { input: unknown }).input = { feature: 'other' }; },
      (r) => { [r[3], r[4]] = [r[4], r[3]]; },
    ];
    for (const edit of edits) {
      const edited = clone(records);
      edit(edited);
      const report = replayExecution(id, edited);
      expect(report.ok).toBe(false);
      expect(report.chainBreaks.length).toBeGreaterThan(0);
    }
    // the untouched copy still verifies
    expect(replayExecution(id, clone(records)).ok).toBe(true);
  });
});
