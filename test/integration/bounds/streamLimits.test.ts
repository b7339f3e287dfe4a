/**
 * The event-log stream is bounded (issue 9): it is created with max_bytes
 * (SMARTSPEC_STREAM_MAX_BYTES) and discard policy `new`, an existing stream
 * gets new limits when they change, and an append to a full log fails with a
 * clear LOG_FULL error — nothing already recorded is dropped to make room.
 */
import { DiscardPolicy, jetstreamManager } from '@nats-io/jetstream';
import { describe, expect, it } from 'vitest';
import { useNatsServer } from '../../support/nats.js';
import { connectNats } from '../../../src/nats/connect.js';
import { EventLog } from '../../../src/log/eventLog.js';
import { EXECUTIONS_STREAM } from '../../../src/nats/names.js';
import { Engine } from '../../../src/worker/engine.js';
import { defaultExecutors } from '../../../src/steps/index.js';
import { SmartSpecError } from '../../../src/errors.js';
import { def } from '../../support/engine.js';
import { DEFAULT_LIMITS } from '../../../src/limits.js';
import { replayExecution } from '../../../src/log/replay.js';

const nats = useNatsServer();
const MB = 1_000_000;

describe('the event-log stream', () => {
  it('has a byte limit and refuses (never drops) when full; changed limits are applied to the existing stream', async () => {
    const nc = await connectNats(nats.url, 'test-limits');
    try {
      const jsm = await jetstreamManager(nc);
      await EventLog.open(nc); // the default
      expect((await jsm.streams.info(EXECUTIONS_STREAM)).config).toMatchObject({ max_bytes: DEFAULT_LIMITS.streamMaxBytes, discard: DiscardPolicy.New });

      const log = await EventLog.open(nc, { maxBytes: 2 * MB }); // a new setting: the stream is updated
      expect((await jsm.streams.info(EXECUTIONS_STREAM)).config).toMatchObject({ max_bytes: 2 * MB, discard: DiscardPolicy.New });

      // Steps whose outputs are 60 kB each (inline: under SMARTSPEC_INLINE_MAX_BYTES, so not kept by reference): the 2 MB log fills up part-way.
      const engine = await Engine.create({ nc, log, executors: defaultExecutors() });
      const definition = def({ id: 'fills', steps: Array.from({ length: 50 }, (_, i) => ({ id: `s${i}`, type: 'transform', value: '{{input.big}}' })) });
      const runner = await engine.start({ definition, input: { big: 'x'.repeat(60_000) } });
      const err = await runner.done.then(() => undefined, (e: unknown) => e);
      await engine.close();
      expect(err).toBeInstanceOf(SmartSpecError);
      expect(err).toMatchObject({ code: 'LOG_FULL', retryable: true });
      expect((err as Error).message).toMatch(/event log is full \(SMARTSPEC_STREAM_MAX_BYTES\).*nothing was dropped/);

      // Everything recorded before it is still there, from the first record on, and verifies.
      const records = await log.read(runner.executionId);
      expect(records[0].record.type).toBe('ExecutionStarted');
      expect(records.length).toBeGreaterThan(2);
      expect(replayExecution(runner.executionId, records).ok).toBe(true);
      expect((await jsm.streams.info(EXECUTIONS_STREAM)).state.first_seq).toBe(1); // nothing dropped from the head

      // More room (a raised limit, applied to the existing stream): the execution continues to the end.
      const roomier = await EventLog.open(nc, { maxBytes: 20 * MB });
      expect((await jsm.streams.info(EXECUTIONS_STREAM)).config.max_bytes).toBe(20 * MB);
      const again = await Engine.create({ nc, log: roomier, executors: defaultExecutors() });
      try {
        expect((await (await again.resume(runner.executionId)).done).status).toBe('COMPLETED');
      } finally {
        await again.close();
      }
    } finally {
      await nc.close();
    }
  });
});
