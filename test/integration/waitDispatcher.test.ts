/**
 * The wait dispatcher's catch-up read: a worker that learns of a wait reads
 * the events stored since the wait began, so an event stored before any
 * dispatcher knew the wait is still delivered, and only to the wait it
 * matches; events stored before the wait began never are.
 */
import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { CommandBus } from '../../src/bus/commands.js';
import { WaitDispatcher } from '../../src/events/waitDispatcher.js';
import { WaitStore } from '../../src/events/waitStore.js';
import { connectNats } from '../../src/nats/connect.js';
import { COMMANDS_STREAM } from '../../src/nats/names.js';
import { ensureEventsStream } from '../../src/triggers/triggerConsumer.js';
import { useNatsServer } from '../support/nats.js';
import { until } from '../support/processes.js';

const nats = useNatsServer();

describe('wait dispatcher', () => {
  it('delivers an event stored after the wait began but before any dispatcher knew it', async () => {
    const nc = await connectNats(nats.url, 'dispatcher-test');
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await ensureEventsStream(nc, { stream: 'EVENTS', subjects: ['shipments.>'], maxAgeMs: 3_600_000 });
    const bus = await CommandBus.open(nc);
    const waits = await WaitStore.open(nc, 'EVENTS');
    await js.publish('shipments.sent', JSON.stringify({ order: 'X1', n: 0 })); // before the wait: not its event
    const scope = { input: { order: 'X1' }, steps: {}, execution: { id: 'exec-1', workflowId: 'w' } };
    await waits.arm({ executionId: 'exec-1', stepId: 'shipped', attempt: 1, subject: 'shipments.*', match: '{% event.order = input.order %}', scope });
    await waits.arm({ executionId: 'exec-2', stepId: 'shipped', attempt: 1, subject: 'shipments.*', match: "{% event.order = 'none' %}", scope: { ...scope, execution: { id: 'exec-2', workflowId: 'w' } } });
    await js.publish('shipments.sent', JSON.stringify({ order: 'Y9', n: 1 })); // matches nobody
    await js.publish('shipments.sent', JSON.stringify({ order: 'X1', n: 2 })); // the one
    await js.publish('shipments.sent', JSON.stringify({ order: 'X1', n: 3 })); // later: the first match wins

    // Only now does a dispatcher start: its durable consumer begins with new events.
    const dispatcher = new WaitDispatcher({ nc, bus, waits, logger: pino({ level: 'silent' }) });
    await dispatcher.start();
    try {
      const signal = await until('a signal command for exec-1', async () => {
        const m = await jsm.streams.getMessage(COMMANDS_STREAM, { last_by_subj: 'smartspec.cmd.signal' }).catch(() => null);
        return m ? m.json<{ executionId: string; name: string; payload: { data: { n: number }; subject: string } }>() : undefined;
      });
      expect(signal).toMatchObject({ executionId: 'exec-1', name: 'event:shipped', payload: { subject: 'shipments.sent', data: { order: 'X1', n: 2 } } });
      await new Promise((r) => setTimeout(r, 500));
      const info = await jsm.streams.info(COMMANDS_STREAM, { subjects_filter: 'smartspec.cmd.signal' });
      expect(info.state.messages).toBe(1); // one signal: none for exec-2, no second one for exec-1
    } finally {
      await dispatcher.stop();
      await nc.close();
    }
  }, 30_000);
});
