/**
 * Fail-over on a real 3-node NATS cluster (nats-server 2.9, JetStream on every
 * node, streams and KV buckets at 3 replicas). An edge and two workers run
 * in-process against all three servers (NATS_URL lists them, NATS_REPLICAS=3);
 * 50 executions (transforms, short sleeps, a fork-join) are submitted over
 * HTTP while the node leading SMARTSPEC_EXECUTIONS — made to lead the command
 * stream, the workers' consumer and the KV buckets too — is SIGKILLed mid-run.
 * Every execution must still complete, each step completed once (started again
 * only when an attempt was cut off in flight, as the soak allows), with a history whose
 * hash chain and replay verify; a submission made with no quorum must be
 * refused with a 503 and start once when retried; reads and listings must keep working on the two
 * survivors. The run happens once, for whichever test asks first.
 *
 * The same run again with NATS_PARTITIONS=3: the event log and the commands
 * in three streams each, whose leaders are first placed on the three nodes
 * (partition k's on node k+1: the test checks they are spread), then the node
 * leading partition 0 (and the KV buckets) is SIGKILLed; the same checks
 * follow, every read going to the execution's own partition.
 *
 * The nodes run the shipped example configuration (cluster/node-N.conf) with
 * free loopback ports and temporary store directories given on the command
 * line, so the example is exercised too. Run it with `npm run test:cluster`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamApiError, jetstreamManager, type JetStreamManager, type MsgRequest } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { startService, type RunningService } from '../../src/cli/service.js';
import { connectNats } from '../../src/nats/connect.js';
import { startNatsServer, type NatsServer } from '../../src/nats/server.js';
import { verifyChain, type LogRecord, type StoredRecord } from '../../src/log/records.js';
import { replayExecution } from '../../src/log/replay.js';
import { Partitions } from '../../src/nats/partitions.js';
import { WORKERS_CONSUMER } from '../../src/bus/commands.js';
import { http } from '../support/service.js';
import { natsUser, runnableConfig, TEST_NATS_PASSWORDS } from '../support/nats.js';
import { freePort, until } from '../support/processes.js';

const NODES = 3;
const EXECUTIONS = 50;
const CLUSTER_DIR = resolve(import.meta.dirname, '../../cluster');

interface Node { name: string; server: NatsServer; clusterPort: number; storeDir: string; logFile: string; killed: boolean }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The whole run and its checks, on a cluster of its own, with the log in `partitions` streams. */
function failOverSuite(partitions: number): void {
  const P = new Partitions(partitions);
  /** The stream whose leader is SIGKILLed: the log's (partition 0's, when partitioned). */
  const LOG_STREAM = P.executionStream(0);
  describe(P.partitioned ? `NATS_PARTITIONS=${partitions}` : 'one stream each for the log and the commands (NATS_PARTITIONS unset)', () => {
    const nodes: Node[] = [];
    const services: RunningService[] = [];
    let tmp: string;
    let nc: NatsConnection;
    let jsm: JetStreamManager;
    let natsUrl: string;

    async function startCluster(): Promise<void> {
      tmp = await mkdtemp(join(tmpdir(), 'smartspec-cluster-'));
      const clusterPorts: number[] = [];
      for (let i = 0; i < NODES; i++) clusterPorts.push(await freePort());
      const routes = clusterPorts.map((p) => `nats-route://127.0.0.1:${p}`).join(',');
      await Promise.all(
        clusterPorts.map(async (clusterPort, i) => {
          const configFile = await runnableConfig(join(CLUSTER_DIR, `node-${i + 1}.conf`), tmp);
          const storeDir = join(tmp, `store-${i + 1}`);
          const logFile = join(tmp, `node-${i + 1}.log`);
          const server = await startNatsServer({
            storeDir,
            configFile,
            logFile,
            env: TEST_NATS_PASSWORDS,
            // Client port: free (-1); cluster listen and routes on the ports picked above.
            args: ['--cluster', `nats://127.0.0.1:${clusterPort}`, '--routes', routes],
          });
          nodes[i] = { name: `smartspec-${i + 1}`, server, clusterPort, storeDir, logFile, killed: false };
        }),
      );
      natsUrl = nodes.map((n) => n.server.url).join(',');
    }

    /** Leader (server_name) of a stream, once it has one. */
    async function streamLeader(stream: string): Promise<string> {
      return until(`a leader of ${stream}`, async () => (await jsm.streams.info(stream)).cluster?.leader, 20_000);
    }

    const definition = {
      id: 'failover',
      steps: [
        { id: 'a', type: 'transform', value: { n: '{{input.n}}' } },
        { id: 'nap1', type: 'sleep', durationMs: 150 },
        { id: 'b', type: 'transform', value: { from: '{{steps.a.output.n}}' } },
        { id: 'c', type: 'sleep', durationMs: 200 },
        { id: 'd', type: 'transform', value: 'd of {{input.n}}' },
        { id: 'e', type: 'transform', value: { joined: ['{{steps.b.output}}', '{{steps.d.output}}'] } },
        { id: 'nap2', type: 'sleep', durationMs: 100 },
        { id: 'f', type: 'transform', value: { n: '{{input.n}}', e: '{{steps.e.output}}' } },
      ],
      parallel: [['b', 'c', 'd']],
    };
    const STEP_IDS = definition.steps.map((s) => s.id);

    beforeAll(async () => {
      await startCluster();
      nc = await connectNats(natsUrl, 'failover-test', natsUser('service'));
      jsm = await jetstreamManager(nc, { checkAPI: false });
      // The JetStream meta leader is elected once the routes are up: account info answers then.
      await until('the JetStream meta leader', async () => (await jsm.getAccountInfo(), true), 30_000, 200);

      const env = {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        LOG_LEVEL: process.env.FAILOVER_LOG_LEVEL ?? 'silent',
        RATE_LIMIT_MAX: '100000',
        NATS_URL: natsUrl,
        NATS_REPLICAS: '3',
        ACK_WAIT_MS: '1000',
        // An execution no live process hosts is sent to a worker after 5 s of quiet (src/recovery).
        SMARTSPEC_STUCK_AFTER: '5s',
        ...(P.partitioned ? { NATS_PARTITIONS: String(partitions) } : {}),
      };
      // One at a time: the first creates the streams, buckets and the consumer at R3.
      services.push(await startService({ edge: true, worker: false }, { ...env, ...natsUser('edge') }));
      services.push(await startService({ edge: false, worker: true }, { ...env, ...natsUser('worker') }));
      services.push(await startService({ edge: false, worker: true }, { ...env, ...natsUser('worker') }));
    }, 90_000);

    afterAll(async () => {
      for (const s of services) await s.stop().catch(() => undefined);
      await nc?.close().catch(() => undefined);
      for (const n of nodes) await n?.server.stop().catch(() => undefined);
      if (tmp) await rm(tmp, { recursive: true, force: true });
    }, 60_000);


    /**
     * The verifier's own reader: one STREAM.MSG.GET per record (`next_by_subj`),
     * answered by the stream leader. It needs no consumer, so it is independent of
     * how the product reads (see the read test below).
     */
    async function readHistory(executionId: string): Promise<StoredRecord[]> {
      const out: StoredRecord[] = [];
      for (let seq = 1; ; ) {
        const m = await jsm.streams.getMessage(P.executionStreamOf(executionId), { seq, next_by_subj: P.executionSubject(executionId) } as unknown as MsgRequest).catch((err) => {
          if (err instanceof JetStreamApiError && err.code === 10037) return null; // no (further) message
          throw err;
        });
        if (!m) return out;
        out.push({ seq: m.seq, record: m.json<LogRecord>() });
        seq = m.seq + 1;
      }
    }

    async function lastRecord(executionId: string): Promise<LogRecord | undefined> {
      const m = await jsm.streams.getMessage(P.executionStreamOf(executionId), { last_by_subj: P.executionSubject(executionId) }).catch(() => null);
      return m?.json<LogRecord>();
    }

    const TERMINAL = ['ExecutionCompleted', 'ExecutionFailed', 'ExecutionCancelled'];

    /**
     * Move the leader of a stream (or of a consumer) to `target` by asking the
     * current leader to step down until the election lands there. Returns whether
     * it got there within the time given.
     */
    async function moveLeader(target: string, subject: string, leader: () => Promise<string | undefined>, timeoutMs: number): Promise<boolean> {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const current = await leader().catch(() => undefined);
        if (current === target) return true;
        if (current) await nc.request(subject, '', { timeout: 3000 }).catch(() => undefined);
        await until('a new leader', async () => { const l = await leader(); return l && l !== current; }, 5000, 50).catch(() => undefined);
      }
      return false;
    }

    /** What the fail-over run saw, for the checks after it. */
    const run = {
      ids: [] as string[],
      /** Each refused submission: which, its status, its detail, when (ms after the run began). */
      refused: [] as { i: number; status: number; detail: string; at: number }[],
      victim: '',
      alsoLed: [] as string[],
      newLeader: '',
      /** Partitioned: each event-log stream's leader once placed, before the kill. */
      placed: {} as Record<string, string>,
      killedAt: 0,
      endedAt: 0,
      ended: new Map<string, string>(),
    };

    /**
     * The fail-over run, once for the file, by whichever test asks first (every
     * test below checks what it saw, in any order): 50 submissions, the log's
     * leader SIGKILLed after half of them, then every execution waited for.
     */
    let failOverRun: Promise<void> | undefined;
    const failOver = () => (failOverRun ??= runFailOver());

    async function runFailOver(): Promise<void> {
      const edge = services[0].url!;
      // The victim: the leader of the log. The routes are a full mesh (every node lists all three),
      // so no node is the only route between the other two. For a run that is the same worst case every time,
      // it is made the leader of the command stream, the workers' consumer and the KV buckets too.
      const stepDown = (stream: string): [string, () => Promise<string | undefined>] => [`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, async () => (await jsm.streams.info(stream)).cluster?.leader];
      if (P.partitioned) {
        // Partition k's streams led by node k+1 (wrapping): the leaders are spread, as on a real cluster they can be.
        for (const k of P.all()) {
          const node = nodes[k % NODES].name;
          for (const stream of [P.executionStream(k), P.commandStream(k)]) await moveLeader(node, ...stepDown(stream), 8000);
        }
        for (const k of P.all()) run.placed[P.executionStream(k)] = await streamLeader(P.executionStream(k));
      }
      run.victim = await streamLeader(LOG_STREAM);
      console.log(`[cluster fail-over, ${partitions} partition(s)] workers connected to ${services.filter((x) => x.engine).map((x) => x.engine!.nc.info?.server_name).join(', ')}; victim ${run.victim}`);
      const victim = nodes.find((n) => n.name === run.victim);
      expect(victim, `stream leader ${run.victim} is one of ours`).toBeDefined();
      const COMMANDS = P.commandStream(0);
      const leaders: [string, string, () => Promise<string | undefined>][] = [
        [COMMANDS, ...stepDown(COMMANDS)],
        [`${COMMANDS} > ${WORKERS_CONSUMER}`, `$JS.API.CONSUMER.LEADER.STEPDOWN.${COMMANDS}.${WORKERS_CONSUMER}`, async () => (await jsm.consumers.info(COMMANDS, WORKERS_CONSUMER)).cluster?.leader],
        ...['KV_smartspec_executions', 'KV_smartspec_idempotency', 'KV_smartspec_timers'].map((s) => [s, ...stepDown(s)] as [string, string, () => Promise<string | undefined>]),
      ];
      for (const [what, subject, leader] of leaders) if (await moveLeader(run.victim, subject, leader, 8000)) run.alsoLed.push(what);
      expect(await streamLeader(LOG_STREAM)).toBe(run.victim);
      const t0 = Date.now();

      // Submissions are spread over ~1.5 s; the kill lands after half of them. A client
      // retries a refused submission with the same Idempotency-Key, as a careful client
      // does during a fail-over; the refusals are recorded and checked below.
      const submit = async (i: number): Promise<string> => {
        const executionId = `fo-${i}-${t0}`;
        const deadline = Date.now() + 45_000;
        for (;;) {
          const r = await http(edge, 'POST', '/executions', { definition, input: { n: i }, executionId }, { 'Idempotency-Key': executionId })
            .catch((err: Error) => ({ status: 0, json: { detail: err.message } }));
          if (r.status === 202) {
            expect(r.json.executionId).toBe(executionId);
            return executionId;
          }
          run.refused.push({ i, status: r.status, detail: String(r.json?.detail ?? ''), at: Date.now() - t0 });
          expect(r.status === 0 || r.status >= 500, `submission ${i} refused as a client error: ${r.status} ${JSON.stringify(r.json)}`).toBe(true);
          if (Date.now() > deadline) throw new Error(`submission ${i} kept failing: ${r.status} ${JSON.stringify(r.json)}`);
          await sleep(250);
        }
      };
      const submissions: Promise<string>[] = [];
      for (let i = 0; i < EXECUTIONS; i++) {
        submissions.push(submit(i));
        if (i === EXECUTIONS / 2) {
          await victim!.server.kill(); // SIGKILL
          victim!.killed = true;
          run.killedAt = Date.now() - t0;
        }
        await sleep(30);
      }
      run.ids = await Promise.all(submissions);
      const submittedAt = Date.now() - t0;

      // A new leader for the log among the two survivors.
      run.newLeader = await until('a new leader of the log', async () => {
        const l = await streamLeader(LOG_STREAM);
        return l !== run.victim && l;
      }, 30_000);
      const electedAt = Date.now() - t0;

      // All of them end (the last record of each history, as the stream leader has it). Stop
      // early when nothing more can happen: no command left in the work queue (a command is
      // acked only when its execution ends) and the rest have no history at all.
      const { ended } = run;
      const endTimes: number[] = [];
      let quiet = 0;
      await until(`all ${EXECUTIONS} executions to end`, async () => {
        let unstarted = 0;
        await Promise.all(run.ids.filter((id) => !ended.has(id)).map(async (id) => {
          const last = await lastRecord(id);
          if (last && TERMINAL.includes(last.type)) { ended.set(id, last.type); endTimes.push(Date.parse(last.at) - t0); }
          if (!last) unstarted++;
        }));
        if (ended.size === run.ids.length) return true;
        let queued = 0;
        for (const k of P.all()) queued += (await jsm.streams.info(P.commandStream(k))).state.messages;
        quiet = queued === 0 && unstarted === run.ids.length - ended.size ? quiet + 1 : 0;
        return quiet >= 8; // 2 s without a queued command
      }, 75_000, 250).catch(() => undefined);
      run.endedAt = Date.now() - t0;

      const refusedBy = Object.fromEntries([...new Set(run.refused.map((r) => r.status))].map((s) => [s, run.refused.filter((r) => r.status === s).length]));
      console.log(
        `[cluster fail-over, ${partitions} partition(s)] ${P.partitioned ? `event-log leaders placed ${JSON.stringify(run.placed)}; ` : ''}SIGKILLed ${run.victim} (leader of ${[LOG_STREAM, ...run.alsoLed].join(', ')}) at ${run.killedAt} ms; ` +
          `all submitted at ${submittedAt} ms; new leader of the log ${run.newLeader} seen at ${electedAt} ms; ${[...ended.values()].filter((t) => t === 'ExecutionCompleted').length}/${EXECUTIONS} COMPLETED (recorded as ended between ${Math.min(...endTimes)} and ${Math.max(...endTimes)} ms); ` +
          `submissions refused and retried: ${run.refused.length} ${JSON.stringify(refusedBy)}`,
      );
    }

    describe('fail-over on a 3-node cluster', () => {
      it('streams and KV buckets are replicated on all three nodes', async () => {
        for (const name of [...P.streams(), 'KV_smartspec_executions', 'KV_smartspec_workflows', 'KV_smartspec_idempotency']) {
          const info = await jsm.streams.info(name);
          expect(info.config.num_replicas, name).toBe(3);
          expect(info.cluster?.leader, name).toBeTruthy();
        }
      });

      if (P.partitioned) {
        it('the event-log streams\' leaders were spread over the three nodes, and every partition has a leader among the survivors after the kill', async () => {
          await failOver();
          expect(new Set(Object.values(run.placed)).size, JSON.stringify(run.placed)).toBe(Math.min(partitions, NODES));
          // Every partition's history was written: executions landed in all of them.
          expect(new Set(run.ids.map((id) => P.of(id))).size).toBe(partitions);
          for (const stream of P.streams()) {
            const leader = await streamLeader(stream);
            expect(leader, stream).not.toBe(run.victim);
          }
        }, 150_000);
      }

      it(`${EXECUTIONS} executions submitted over HTTP all complete while the log's leader is SIGKILLed`, async () => {
        await failOver();
        const { ended } = run;
        const notEnded = await Promise.all(run.ids.filter((id) => !ended.has(id)).map(async (id) => `${id}: ${(await lastRecord(id))?.type ?? 'no history (never started)'}`));
        expect(notEnded, `${notEnded.length} of ${EXECUTIONS} executions did not end`).toEqual([]);
        expect(run.ids.filter((id) => ended.get(id) !== 'ExecutionCompleted').map((id) => `${id}: ${ended.get(id)}`)).toEqual([]);
      }, 150_000);

      it('every history is complete and verifies: each step completed once (started again only when cut off in flight), hash chain, replay', async () => {
        await failOver();
        expect(run.ids).toHaveLength(EXECUTIONS);
        let records = 0;
        let verified = 0;
        const rerun: string[] = [];
        for (const [n, id] of run.ids.entries()) {
          if (!run.ended.has(id)) continue; // reported by the test above
          const history = await readHistory(id);
          records += history.length;
          const types = history.map((r) => r.record.type);
          expect(types[0], id).toBe('ExecutionStarted');
          expect(types.at(-1), id).toBe('ExecutionCompleted');
          expect(types.filter((t) => t === 'ExecutionStarted'), id).toHaveLength(1);
          expect(types.filter((t) => t === 'ExecutionCompleted'), id).toHaveLength(1);
          expect(types.filter((t) => t === 'StepFailed' || t === 'ExecutionFailed'), id).toEqual([]);
          for (const step of STEP_IDS) {
            const count = (type: string) => history.filter((r) => r.record.type === type && (r.record as { stepId?: string }).stepId === step).length;
            // On a failure, the history in short: which records, which attempt, when.
            const story = () => history.map((r) => `${r.seq} ${r.record.type}${'stepId' in r.record && r.record.stepId ? ` ${r.record.stepId}#${(r.record as { attempt?: number }).attempt ?? ''}` : ''} ${r.record.at.slice(17)}`).join(', ');
            const [started, completed] = [count('StepStarted'), count('StepCompleted')];
            // Started again only as the soak allows it: an attempt cut off in flight (its host's connection
            // died with the node, no completion recorded) and run again after an ExecutionResumed.
            const attempts = history.filter((r) => (r.record as { stepId?: string }).stepId === step && r.record.type === 'StepStarted');
            for (const again of attempts.slice(1)) {
              const before = history.filter((r) => r.seq < again.seq);
              expect(before.some((r) => r.record.type === 'ExecutionResumed' && r.seq > attempts[0].seq), `${id} ${step} started again without a resume: ${story()}`).toBe(true);
            }
            expect(started, `${id} ${step} started: ${story()}`).toBeGreaterThanOrEqual(1);
            expect(completed, `${id} ${step} completed: ${completed === 1 ? '' : story()}`).toBe(1);
            if (started > 1) rerun.push(`${id} ${step}`);
          }
          expect(verifyChain(history), id).toEqual([]);
          const replay = replayExecution(id, history);
          expect(replay.ok, `${id} replay: ${JSON.stringify(replay.events.filter((e) => !e.ok)).slice(0, 500)}`).toBe(true);
          expect((history.at(-1)!.record as { output?: { n?: unknown } }).output?.n, `${id} has its own output`).toBe(n);
          verified++;
        }
        console.log(`[cluster fail-over, ${partitions} partition(s)] ${verified} histories, ${records} records verified (chain + replay, each step completed once); in-flight re-runs: ${rerun.join(', ') || 'none'}`);
        expect(verified).toBe(EXECUTIONS);
      }, 210_000);

      it('a submission that meets the fail-over is refused with a 503 (retryable), never a 500', async () => {
        await failOver();
        // Whether a submission lands in the election window is a race (elections can take only
        // milliseconds), so refusals are not required here; the test below forces an outage.
        expect(run.refused.filter((r) => r.at < run.killedAt), 'refused before the kill').toEqual([]);
        const not503 = run.refused.filter((r) => r.status !== 503);
        expect(not503.slice(0, 3), `${not503.length} of ${run.refused.length} refusals were not 503`).toEqual([]);
      }, 150_000);

      it('with one node down, the edge reads every execution (GET /executions/:id and /events) within 2 s', async () => {
        await failOver();
        expect(run.ids).toHaveLength(EXECUTIONS);
        const edge = services[0].url!;
        const bad: string[] = [];
        await Promise.all(run.ids.filter((id) => run.ended.has(id)).map(async (id) => {
          for (const path of [`/executions/${id}`, `/executions/${id}/events`]) {
            const t = Date.now();
            const r = await http(edge, 'GET', path);
            const ms = Date.now() - t;
            if (r.status !== 200 || ms > 2000) bad.push(`${path}: ${r.status} in ${ms} ms`);
          }
        }));
        expect(bad.slice(0, 3), `${bad.length} of ${2 * run.ended.size} reads failed or took > 2 s`).toEqual([]);
      }, 210_000);

      it('the execution index lists every execution as COMPLETED after the fail-over', async () => {
        await failOver();
        expect(run.ids).toHaveLength(EXECUTIONS);
        const edge = services[0].url!;
        let wrong: string[] = [];
        await until('the index to catch up', async () => {
          const r = await http(edge, 'GET', '/executions?workflowId=failover&limit=1000');
          const status = new Map<string, string>((r.json?.executions ?? []).map((e: { executionId: string; status: string }) => [e.executionId, e.status]));
          wrong = run.ids.filter((id) => status.get(id) !== 'COMPLETED').map((id) => `${id}: ${status.get(id) ?? 'not listed'}`);
          return wrong.length === 0;
        }, 5000, 250).catch(() => undefined);
        // Where it went wrong: the KV entry itself (the engine's write), or the edge's mirror of it (its watch).
        const kv = await new Kvm(nc).open('smartspec_executions');
        const sample = [...wrong.filter((w) => !w.endsWith('not listed')).slice(0, 3), ...wrong.filter((w) => w.endsWith('not listed')).slice(0, 2)];
        const inKv = await Promise.all(sample.map(async (w) => {
          const id = w.slice(0, w.indexOf(':'));
          const e = await kv.get(id).catch(() => null);
          return `${w} (in the KV bucket: ${e && e.operation === 'PUT' ? (e.json() as { status: string }).status : 'no entry'})`;
        }));
        expect(inKv, `${wrong.length} of ${EXECUTIONS} executions are not listed as COMPLETED`).toEqual([]);
      }, 180_000);

      it('the service stays ready on the two surviving nodes', async () => {
        await failOver();
        expect(nodes.filter((n) => n.killed)).toHaveLength(1);
        expect((await http(services[0].url!, 'GET', '/readyz')).status).toBe(200);
      }, 150_000);

      it('with a second node frozen (no quorum), a submission is refused with a 503; after it thaws, the same Idempotency-Key starts it exactly once', async () => {
        await failOver();
        const edge = services[0].url!;
        const frozen = nodes.find((n) => !n.killed)!;
        const executionId = `quorum-${Date.now()}`;
        const submit = () => http(edge, 'POST', '/executions', { definition, input: { n: 7 }, executionId }, { 'Idempotency-Key': executionId });
        process.kill(frozen.server.pid, 'SIGSTOP'); // one of three left: nothing can be committed
        let refused: { status: number; json: { detail?: string } };
        try {
          refused = await submit();
        } finally {
          process.kill(frozen.server.pid, 'SIGCONT');
        }
        expect(refused.status, JSON.stringify(refused.json)).toBe(503);
        // Thawed: a careful client retries with the same key until it is taken.
        const accepted = await until('the retried submission to be accepted', async () => {
          const r = await submit();
          expect(r.status === 202 || r.status >= 500, `retry refused as a client error: ${r.status} ${JSON.stringify(r.json)}`).toBe(true);
          return r.status === 202 && r.json;
        }, 60_000, 500);
        expect(accepted.executionId).toBe(executionId);
        await until('the execution to complete', async () => TERMINAL.includes((await lastRecord(executionId))?.type ?? ''), 60_000, 250);
        const types = (await readHistory(executionId)).map((r) => r.record.type);
        expect(types.filter((t) => t === 'ExecutionStarted')).toHaveLength(1);
        expect(types.at(-1)).toBe('ExecutionCompleted');
      }, 150_000);
    });
  });
}

failOverSuite(1);
failOverSuite(3);
