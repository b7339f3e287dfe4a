/**
 * The process that wrote a history resumes it without reading it back (it keeps
 * what it wrote, src/log/recentHistories.ts), on a real nats-server; a record
 * another process appended makes it read the stream, so nothing written
 * elsewhere is missed.
 */
import { describe, expect, it } from 'vitest';
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { def, types, useEngine } from '../support/engine.js';
import { useNatsServer } from '../support/nats.js';
import { consumersCreatedDuring } from '../support/consumers.js';

const nats = useNatsServer();
const fx = useEngine(nats);

const failing = def({ id: 'fails-once', steps: [{ id: 'a', type: 'transform', value: 1 }, { id: 'b', type: 'fail', message: 'no' }] });

describe('a history kept by the process that wrote it', () => {
  it('is resumed without a read of the stream', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({ definition: failing });
    expect((await runner.done).status).toBe('FAILED');
    const created = await consumersCreatedDuring(nats.url, async () => {
      const resumed = await engine.resume(runner.executionId, { fromStep: 'b' });
      expect((await resumed.done).status).toBe('FAILED');
    });
    expect(created).toBe(0);
    expect(types(await fx.log.read(runner.executionId))).toContain('ExecutionResumed');
  });

  it('is read again from the stream once another process appended to it, and the resume sees that record', async () => {
    const engine = await fx.engine();
    const runner = await engine.start({ definition: failing });
    expect((await runner.done).status).toBe('FAILED');
    // Another process appends a record (here: a second resume, through its own connection and log).
    const other = await connectNats(nats.url, 'other-process');
    try {
      const otherEngine = await (await import('../../src/worker/engine.js')).Engine.create({ nc: other, log: await EventLog.open(other) });
      const resumedElsewhere = await otherEngine.resume(runner.executionId, { fromStep: 'b' });
      expect((await resumedElsewhere.done).status).toBe('FAILED');
      await otherEngine.close();
    } finally {
      await other.close();
    }
    const created = await consumersCreatedDuring(nats.url, async () => {
      const resumed = await engine.resume(runner.executionId, { fromStep: 'b' });
      expect((await resumed.done).status).toBe('FAILED');
    });
    expect(created).toBeGreaterThan(0);
    // Both resumes are in the history, in order, and it verifies as one chain.
    const records = await fx.log.read(runner.executionId);
    expect(types(records).filter((t) => t === 'ExecutionResumed')).toHaveLength(2);
  });
});
