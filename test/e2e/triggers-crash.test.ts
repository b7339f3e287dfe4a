/**
 * Triggers across a worker crash: two worker processes share the triggers'
 * durable consumer; one is SIGKILLed while events stream in. Every event still
 * starts exactly one execution (the events the dead worker held are
 * redelivered to the other, whose derived execution ids match).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connectNats } from '../../src/nats/connect.js';
import { EXECUTION_INDEX_BUCKET } from '../../src/nats/names.js';
import { useNatsServer } from '../support/nats.js';
import { killAll, killChild, spawnCli, until } from '../support/processes.js';
import { http, useService } from '../support/service.js';

const nats = useNatsServer();
const startService = useService(nats);
afterAll(killAll);

describe('triggers and a SIGKILLed worker', () => {
  it('200 events, a worker killed mid-stream: exactly 200 executions, all completed', async () => {
    const env = { NATS_URL: nats.url, ACK_WAIT_MS: '2000', LOG_LEVEL: 'info', SMARTSPEC_EVENTS_SUBJECTS: 'signups.>' };
    const workers = [spawnCli('w1', 'worker', env), spawnCli('w2', 'worker', env)];
    await Promise.all(workers.map((w) => w.waitForOutput(/worker consuming commands/, 60_000)));
    const { url } = await startService({ worker: false, env: { ...env, LOG_LEVEL: 'silent' } });
    expect((await http(url, 'POST', '/workflows', { id: 'signup', triggers: [{ subject: 'signups.new' }], steps: [{ id: 'greet', type: 'transform', value: { hi: '{{input.n}}' } }] })).status).toBe(201);
    await new Promise((r) => setTimeout(r, 500)); // the workers' registry mirror

    const nc = await connectNats(nats.url, 'triggers-crash-test');
    const js = jetstream(nc);
    const list = async () => (await http(url, 'GET', '/executions?workflowId=signup&limit=1000')).json.executions as { executionId: string; status: string }[];
    let killed = false;
    for (let n = 0; n < 200; n++) {
      await js.publish('signups.new', JSON.stringify({ n }), { msgID: `signup-${n}` });
      if (!killed && n >= 80 && (await list()).length >= 20) {
        await killChild(workers[0]);
        killed = true;
      }
    }
    expect(killed).toBe(true);
    await until('200 completed executions', async () => {
      const ex = await list();
      return ex.length >= 200 && ex.every((e) => e.status === 'COMPLETED');
    }, 60_000, 250).catch(async (err: Error) => {
      // Which ones, and what their logs say (the listing is the index; the execution's own view folds its log).
      const ex = await list();
      const kv = await new Kvm(nc).open(EXECUTION_INDEX_BUCKET);
      const open = await Promise.all(ex.filter((e) => e.status !== 'COMPLETED').slice(0, 5).map(async (e) => `${e.executionId}: listed ${JSON.stringify(e)}, the bucket has ${JSON.stringify((await kv.get(e.executionId))?.json())}, log says ${(await http(url, 'GET', `/executions/${e.executionId}`)).json.status}`));
      const notes = workers.flatMap((w) => w.output().split('\n').filter((l) => /index|"level":[45]0/.test(l)).slice(-10).map((l) => `${w.name}: ${l}`));
      throw new Error(`${err.message}: ${ex.length} listed; not completed: ${open.join('; ') || 'none'}\n--- the workers' warnings:\n${notes.join('\n')}`);
    });
    await new Promise((r) => setTimeout(r, 3000)); // past the ack wait: redeliveries would show now
    const executions = await list();
    expect(executions).toHaveLength(200);
    const inputs = new Set<number>();
    for (const e of executions) inputs.add((await http(url, 'GET', `/executions/${e.executionId}`)).json.steps.greet.output.hi);
    expect(inputs.size).toBe(200);
    await nc.close();
  }, 150_000);
});
