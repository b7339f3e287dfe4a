/**
 * NATS_PARTITIONS=3 against a real nats-server: the service (edge + worker)
 * runs a fork-join, a signal (followed live over SSE), a resume and, from the
 * command line, a replay; each history lies in its own partition's stream and
 * the records are spread over all three; listings, reads and purge see every
 * partition; a command published by another system on the unpartitioned
 * subject is still taken. And a process started with another N than the
 * deployment's streams were made with is refused, naming both.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService } from '../../src/cli/service.js';
import { CommandBus, WORKERS_CONSUMER } from '../../src/bus/commands.js';
import { EventLog } from '../../src/log/eventLog.js';
import { connectNats } from '../../src/nats/connect.js';
import { Partitions } from '../../src/nats/partitions.js';
import { purgeEndedExecutions } from '../../src/retention/purge.js';
import { runCommand } from '../support/commands.js';
import { useNatsServer } from '../support/nats.js';
import { http, useService, waitForStatus } from '../support/service.js';

const nats = useNatsServer();
/** A second server, a deployment made with one partition. */
const plainNats = useNatsServer();
const start = useService(nats);
const startPlain = useService(plainNats);
const P = new Partitions(3);

let base: string;
let nc: NatsConnection;
let jsm: JetStreamManager;
beforeAll(async () => {
  base = (await start({ env: { NATS_PARTITIONS: '3' } })).url;
  nc = await connectNats(nats.url, 'partitions-test');
  jsm = await jetstreamManager(nc);
}, 60_000);
afterAll(async () => {
  await nc?.close();
});

const forkJoin = {
  id: 'partitioned-fork-join',
  steps: [
    { id: 'a', type: 'transform', value: { n: '{{input.n}}' } },
    { id: 'b', type: 'transform', value: 'b' },
    { id: 'c', type: 'transform', value: 'c' },
    { id: 'd', type: 'transform', value: 'd' },
    { id: 'e', type: 'transform', value: { n: '{{steps.a.output.n}}', joined: ['{{steps.b.output}}', '{{steps.c.output}}', '{{steps.d.output}}'] } },
  ],
  parallel: [['b', 'c', 'd']],
};

/** Ids covering every partition twice, in a fixed order. */
function idsOverAllPartitions(prefix: string, each = 2): string[] {
  const ids: string[] = [];
  const per = [0, 0, 0];
  for (let i = 0; per.some((c) => c < each); i++) {
    const id = `${prefix}-${i}`;
    if (per[P.of(id)] < each) { per[P.of(id)]++; ids.push(id); }
  }
  return ids;
}

/** The executions whose records each partition's stream holds. */
async function executionsByStream(): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const k of P.all()) {
    const info = await jsm.streams.info(P.executionStream(k), { subjects_filter: '>' });
    out[P.executionStream(k)] = Object.keys(info.state.subjects ?? {}).map((s) => P.executionIdOf(s)).sort();
  }
  return out;
}

type Event = { seq: number; type: string; stepId?: string; output?: unknown };
/** GET /executions/:id/events, as `{ seq, record }` pairs. */
const eventsOf = async (id: string) => ((await http(base, 'GET', `/executions/${id}/events`)).json.events as Event[]).map(({ seq, ...record }) => ({ seq, record }));

describe('NATS_PARTITIONS=3', () => {
  const forkJoinIds = idsOverAllPartitions('fj');

  it('makes three event-log and three command streams (each with the workers\' consumer), and none of the unpartitioned ones', async () => {
    const names: string[] = [];
    for await (const name of jsm.streams.names()) names.push(name);
    expect(names.filter((n) => n.startsWith('SMARTSPEC_EXECUTIONS') || n.startsWith('SMARTSPEC_COMMANDS')).sort()).toEqual(
      ['SMARTSPEC_COMMANDS_P0', 'SMARTSPEC_COMMANDS_P1', 'SMARTSPEC_COMMANDS_P2', 'SMARTSPEC_EXECUTIONS_P0', 'SMARTSPEC_EXECUTIONS_P1', 'SMARTSPEC_EXECUTIONS_P2'],
    );
    for (const k of P.all()) {
      const info = await jsm.streams.info(P.executionStream(k));
      expect(info.config.subjects).toEqual([`smartspec.exec.p${k}.*`]);
      expect(info.config.description).toBe(`SmartSpec event log, partition ${k} of 3 (NATS_PARTITIONS=3)`);
      expect((await jsm.consumers.info(P.commandStream(k), WORKERS_CONSUMER)).name).toBe(WORKERS_CONSUMER);
    }
  });

  it('runs fork-joins over HTTP; each history is in its partition\'s stream, and the records are spread over all three', async () => {
    for (const [n, executionId] of forkJoinIds.entries()) {
      expect((await http(base, 'POST', '/executions', { definition: forkJoin, input: { n }, executionId })).status).toBe(202);
    }
    for (const [n, id] of forkJoinIds.entries()) {
      const done = await waitForStatus(base, id, ['COMPLETED', 'FAILED']);
      expect(done.status, id).toBe('COMPLETED');
      const events = await eventsOf(id);
      expect(events[0].record.type).toBe('ExecutionStarted');
      expect(events.at(-1)!.record.type).toBe('ExecutionCompleted');
      expect((events.at(-1)!.record as { output?: { n?: number } }).output?.n).toBe(n);
      for (const step of ['b', 'c', 'd']) expect(events.filter((e) => e.record.type === 'StepCompleted' && e.record.stepId === step), `${id} ${step}`).toHaveLength(1);
    }
    const byStream = await executionsByStream();
    for (const k of P.all()) {
      expect(byStream[P.executionStream(k)].filter((id) => id.startsWith('fj-'))).toEqual(forkJoinIds.filter((id) => P.of(id) === k).sort());
    }
    expect(Object.values(byStream).every((ids) => ids.length >= 2), JSON.stringify(byStream)).toBe(true);
  });

  it('lists executions of every partition from the index, each read through its own stream', async () => {
    const r = await http(base, 'GET', `/executions?workflowId=${forkJoin.id}&limit=100`);
    const listed = new Map<string, string>(r.json.executions.map((e: { executionId: string; status: string }) => [e.executionId, e.status]));
    for (const id of forkJoinIds) expect(listed.get(id), id).toBe('COMPLETED');
    // The index's start hint is a sequence of the execution's own stream: a read from it lands on ExecutionStarted.
    for (const id of forkJoinIds) {
      const checkpoints = (await http(base, 'GET', `/executions/${id}/checkpoints`)).json.checkpoints as unknown[];
      expect(checkpoints.length, id).toBeGreaterThan(0);
    }
  });

  it('delivers a signal to a waiting execution, and the SSE stream follows it to its end', async () => {
    const id = idsOverAllPartitions('sig', 1)[2]; // the third partition's first id
    const definition = { id: 'partitioned-signal', steps: [{ id: 'ask', type: 'transform', value: 1 }, { id: 'approve', type: 'signal', name: 'approve' }, { id: 'after', type: 'transform', value: { ok: '{{steps.approve.output.ok}}' } }] };
    expect((await http(base, 'POST', '/executions', { definition, executionId: id })).status).toBe(202);
    await waitForStatus(base, id, ['WAITING']);
    const abort = new AbortController();
    const res = await fetch(`${base}/executions/${id}/events/stream`, { signal: abort.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let seen = '';
    const read = (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        seen += new TextDecoder().decode(value);
        if (seen.includes('ExecutionCompleted')) return;
      }
    })();
    expect((await http(base, 'POST', `/executions/${id}/signals/approve`, { ok: true })).status).toBe(202);
    await read;
    abort.abort();
    expect(seen).toContain('SignalReceived');
    await waitForStatus(base, id, ['COMPLETED']);
    expect((await eventsOf(id)).at(-1)!.record).toMatchObject({ type: 'ExecutionCompleted', output: { ok: true } });
    expect((await executionsByStream())[P.executionStreamOf(id)]).toContain(id);
  });

  it('resumes a failed execution from its failed step with corrected steps, without re-running the steps before it', async () => {
    const id = idsOverAllPartitions('res', 1)[1];
    const steps = (check: object) => [{ id: 'prepare', type: 'transform', value: { n: 1 } }, { id: 'check', ...check }, { id: 'publish', type: 'transform', value: { checked: '{{steps.check.output}}' } }];
    const definition = { id: 'partitioned-resume', steps: steps({ type: 'fail', message: 'check is broken' }) };
    expect((await http(base, 'POST', '/executions', { definition, executionId: id })).status).toBe(202);
    await waitForStatus(base, id, ['FAILED']);
    const r = await http(base, 'POST', `/executions/${id}/resume`, { fromStep: 'check', steps: { steps: steps({ type: 'transform', value: { passed: true } }) } });
    expect(r.status, JSON.stringify(r.json)).toBe(202);
    await waitForStatus(base, id, ['COMPLETED']);
    const events = await eventsOf(id);
    expect(events.map((e) => e.record.type)).toContain('ExecutionResumed');
    expect(events.filter((e) => e.record.type === 'StepStarted' && e.record.stepId === 'prepare')).toHaveLength(1);
    expect((await executionsByStream())[P.executionStreamOf(id)]).toContain(id);
  });

  it('replays an execution from the command line (NATS_PARTITIONS=3); without it, the command is refused naming both values', async () => {
    const id = forkJoinIds[forkJoinIds.length - 1];
    const ok = await runCommand(['replay', id], { NATS_URL: nats.url, NATS_PARTITIONS: '3' });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/replay verified \d+ events/);
    const refused = await runCommand(['replay', id], { NATS_URL: nats.url });
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/NATS_PARTITIONS=1, but this NATS holds SmartSpec's streams in 3 partitions \(stream SMARTSPEC_\w+_P\d\).*NATS_PARTITIONS=3/);
  }, 60_000);

  it('takes a start command another system publishes on the unpartitioned subject smartspec.cmd.start', async () => {
    const executionId = 'other-system-start';
    const definition = { id: 'partitioned-external', steps: [{ id: 'only', type: 'transform', value: 42 }] };
    await jetstream(nc).publish('smartspec.cmd.start', JSON.stringify({ executionId, definition }), { msgID: `start:${executionId}` });
    expect((await waitForStatus(base, executionId, ['COMPLETED'])).status).toBe('COMPLETED');
    expect((await executionsByStream())[P.executionStreamOf(executionId)]).toContain(executionId);
  });

  it('purge finds the ended executions of every partition', async () => {
    const report = await purgeEndedExecutions(nc, { olderThanMs: 0, now: new Date(Date.now() + 3_600_000), dryRun: true, partitions: P });
    const found = report.purged.map((p) => p.executionId);
    for (const id of forkJoinIds) expect(found).toContain(id);
    expect(new Set(found.map((id) => P.of(id))).size).toBe(3);
  });

  it('refuses to open the log or the commands with another N, naming both and what to do', async () => {
    await expect(EventLog.open(nc, { partitions: new Partitions(2) })).rejects.toThrow(/NATS_PARTITIONS=2, but this NATS holds SmartSpec's streams in 3 partitions .*Start with NATS_PARTITIONS=3/);
    await expect(CommandBus.open(nc, { partitions: new Partitions(1) })).rejects.toMatchObject({ code: 'PARTITIONS_MISMATCH', details: { wanted: 1, found: 3 } });
  });

  it('a deployment made with one partition refuses to start with three (and nothing partitioned is created)', async () => {
    const plain = await startPlain({ env: { NATS_PARTITIONS: '1' } });
    const definition = { id: 'plain', steps: [{ id: 'only', type: 'transform', value: 1 }] };
    expect((await http(plain.url, 'POST', '/executions', { definition, executionId: 'plain-1' })).status).toBe(202);
    await waitForStatus(plain.url, 'plain-1', ['COMPLETED']);
    await expect(startService({ edge: true, worker: true }, { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'silent', NATS_URL: plainNats.url, NATS_PARTITIONS: '3' }))
      .rejects.toThrow(/NATS_PARTITIONS=3, but this NATS holds SmartSpec's streams in 1 partition \(stream SMARTSPEC_(EXECUTIONS|COMMANDS)\).*NATS_PARTITIONS=1 \(or unset\)/);
    const pnc = await connectNats(plainNats.url, 'partitions-test-plain');
    try {
      const names: string[] = [];
      for await (const name of (await jetstreamManager(pnc)).streams.names()) names.push(name);
      expect(names.filter((n) => /_P\d+$/.test(n))).toEqual([]);
    } finally {
      await pnc.close();
    }
    expect((await http(plain.url, 'GET', '/executions/plain-1')).json.status).toBe('COMPLETED');
  });
});
