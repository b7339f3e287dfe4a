/**
 * Fuzzing the commands on one execution (fast-check): random interleavings
 * of resume, cancel and signal — through the engine API of two processes
 * (engines A and B) and as raw commands on the bus, consumed by two workers,
 * plus duplicates and garbage commands — never produce two writers: the
 * history's hash chain has no break, replay recomputes every recorded state,
 * and at most one process hosts the execution once things settle.
 */
import fc, { type Arbitrary } from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { CommandBus } from '../../src/bus/commands.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { SmartSpecError } from '../../src/errors.js';
import { EventLog } from '../../src/log/eventLog.js';
import { verifyChain } from '../../src/log/records.js';
import { replayExecution } from '../../src/log/replay.js';
import { connectNats } from '../../src/nats/connect.js';
import { COMMANDS_STREAM, commandSubject, type CommandType } from '../../src/nats/names.js';
import { Engine } from '../../src/worker/engine.js';
import { Worker } from '../../src/worker/worker.js';
import { useNatsServer } from '../support/nats.js';
import { bounded, checkProperty } from './arbitraries.js';

const nats = useNatsServer();

const definition = validateDefinition({
  id: 'cmd-fuzz',
  steps: [
    { id: 'a', type: 'transform', value: '{{input.n}}' },
    { id: 'w1', type: 'signal', name: 'go' },
    { id: 'p1', type: 'sleep', durationMs: 20 },
    { id: 'p2', type: 'transform', value: '{{steps.w1.output}}' },
    { id: 'w2', type: 'signal', name: 'more' },
    { id: 'f', type: 'fail', message: 'asked to fail', when: '{{steps.w2.output.fail}}' },
    { id: 'z', type: 'sleep', durationMs: 10 },
  ],
  parallel: [['p1', 'p2']],
});
/** Replacement steps for a resume: the same, without the failing step. */
const fixedSteps = { steps: definition.steps.filter((s) => s.id !== 'f'), parallel: [['p1', 'p2']] };

type Via = 'A' | 'B' | 'bus';
type Op =
  | { kind: 'signal'; via: Via; delay: number; name: string; payload: unknown }
  | { kind: 'cancel'; via: Via; delay: number; reason?: string }
  | { kind: 'resume'; via: Via; delay: number; req: Record<string, unknown> }
  | { kind: 'garbage'; delay: number; type: string; body: unknown }
  | { kind: 'repeat'; delay: number }; // the previous bus command again, same message id

const via: Arbitrary<Via> = fc.constantFrom('A', 'B', 'bus');
const delay = fc.integer({ min: 0, max: 40 });
const opArb: Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('signal' as const), via, delay, name: fc.constantFrom('go', 'go', 'go', 'more', 'more', 'nope'), payload: fc.oneof(fc.record({ fail: fc.boolean() }), fc.jsonValue({ maxDepth: 2 })) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), via, delay, reason: fc.option(fc.string({ maxLength: 10 }), { nil: undefined }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('resume' as const),
      via,
      delay,
      req: fc.oneof(
        fc.constant({}),
        fc.record({ fromStep: fc.constantFrom('a', 'w1', 'p1', 'p2', 'w2', 'f', 'z', 'nope') }),
        fc.record({ checkpointId: fc.constantFrom('cp-1', 'cp-2', 'cp-4', '3', 'cp-999', 'latest', 'x') }),
        fc.constant({ steps: fixedSteps }),
        fc.record({ fromStep: fc.constantFrom('w2', 'f'), steps: fc.constant(fixedSteps) }),
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('garbage' as const), delay, type: fc.constantFrom('start', 'resume', 'cancel', 'signal', 'bogus'), body: fc.jsonValue({ maxDepth: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('repeat' as const), delay }) },
);
const scenarioArb = fc.record({
  startVia: fc.constantFrom('A', 'bus') as Arbitrary<'A' | 'bus'>,
  ops: fc.array(opArb, { minLength: 1, maxLength: 10 }),
});

// ---------------------------------------------------------------- the processes

const connections: NatsConnection[] = [];
const workers: Worker[] = [];
const engines: Record<'A' | 'B' | 'W1' | 'W2', Engine> = {} as never;
let log: EventLog;
let bus: CommandBus;
let busNc: NatsConnection;

const silent = pino({ level: 'silent' });

beforeAll(async () => {
  const connect = async (name: string) => { const nc = await connectNats(nats.url, name); connections.push(nc); return nc; };
  log = await EventLog.open(await connect('log'));
  busNc = await connect('bus');
  bus = await CommandBus.open(busNc, { consumer: { ackWaitMs: 1000, maxDeliver: 20 } });
  for (const name of ['A', 'B', 'W1', 'W2'] as const) {
    const nc = await connect(name);
    engines[name] = await Engine.create({ nc, log: await EventLog.open(nc), owner: name });
  }
  for (const name of ['W1', 'W2'] as const) {
    const w = new Worker({ engine: engines[name], bus: await CommandBus.open(engines[name].nc, { consumer: { ackWaitMs: 1000, maxDeliver: 20 } }), logger: silent, concurrency: 64, ackWaitMs: 1000 });
    await w.start();
    workers.push(w);
  }
});

afterAll(async () => {
  for (const w of workers) await w.stop().catch(() => undefined);
  for (const e of Object.values(engines)) await e?.close().catch(() => undefined);
  for (const nc of connections) await nc.close().catch(() => undefined);
});

/** Codes a command may be refused with: the state does not allow it, or another process has it. */
const REFUSALS = new Set(['INVALID_EXECUTION_STATE', 'EXECUTION_OWNED', 'CONCURRENT_WRITE', 'STEP_NOT_FOUND', 'CHECKPOINT_NOT_FOUND', 'INVALID_INPUT', 'NO_STEPS', 'INVALID_DEFINITION', 'EXECUTION_NOT_FOUND']);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let seq = 0;

async function checkpointFor(id: string, which: string): Promise<string> {
  if (which !== 'latest') return which;
  const records = await log.read(id).catch(() => []);
  const cps = records.filter((r) => ['ExecutionStarted', 'StepCompleted', 'SignalReceived', 'ExecutionResumed'].includes(r.record.type));
  return `cp-${cps.at(-1)?.seq ?? 1}`;
}

/** This execution's commands still in the work queue (not yet acked). */
async function queuedCommands(id: string): Promise<string[]> {
  const si = await bus.jsm.streams.info(COMMANDS_STREAM);
  const out: string[] = [];
  for (let q = si.state.first_seq; si.state.messages > 0 && q <= si.state.last_seq; q++) {
    const m = await bus.jsm.streams.getMessage(COMMANDS_STREAM, { seq: q }).catch(() => null);
    const text = m ? new TextDecoder().decode(m.data) : '';
    if (text.includes(`"${id}"`)) out.push(`${m!.subject} ${text}`);
  }
  return out;
}

/**
 * Until the execution is still: none of its commands left in the work queue, no new record for
 * 200 ms, no host running a step. Returns what is still pending when it does not get there. A
 * command refused for now (its owner busy, say) comes back after a 2 s nak: the wait allows two rounds.
 */
async function settle(id: string, timeoutMs = 6000): Promise<string | undefined> {
  let last = -1;
  let still = 0;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [queued, rec] = await Promise.all([queuedCommands(id), log.last(id)]);
    const hostsBusy = Object.values(engines).some((e) => { const r = e.runners.get(id); return r && !r.isStopped && r.status === 'RUNNING'; });
    const quiet = queued.length === 0 && !hostsBusy && (rec?.seq ?? 0) === last;
    still = quiet ? still + 1 : 0;
    if (still >= 4) return undefined;
    last = rec?.seq ?? 0;
    if (Date.now() > deadline) return `after ${timeoutMs} ms: commands not acked: ${queued.join('; ') || 'none'}; a host still running steps: ${hostsBusy}`;
    await sleep(50);
  }
}

const counts = { runs: 0, ops: 0, byOutcome: new Map<string, number>(), finalStatus: new Map<string, number>(), records: 0 };
const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

describe('fuzz: interleaved commands on one execution', () => {
  it('random resume/cancel/signal interleavings (engine API of two processes, bus commands to two workers) never make two writers', async () => {
    try {
      await checkProperty('command interleavings (one execution each)',
        fc.asyncProperty(scenarioArb, async ({ startVia, ops }) => {
          const id = `cmdfuzz-${++seq}-${Date.now()}`;
          counts.runs++;
          if (startVia === 'A') await engines.A.start({ definition, input: { n: seq }, executionId: id });
          else await bus.publish('start', { executionId: id, definition, input: { n: seq } }, `start:${id}`);

          let lastBus: { type: CommandType; body: Record<string, unknown>; msgID: string } | undefined;
          const publish = async (type: CommandType, body: Record<string, unknown>) => {
            lastBus = { type, body, msgID: `${type}:${id}:${Math.random()}` };
            await bus.publish(type, body as never, lastBus.msgID);
          };
          const outcomes: Promise<string>[] = [];
          for (const op of ops) {
            await sleep(op.delay);
            counts.ops++;
            const run = async (): Promise<string> => {
              switch (op.kind) {
                case 'signal':
                  if (op.via === 'bus') return publish('signal', { executionId: id, name: op.name, payload: op.payload }).then(() => 'published');
                  return engines[op.via].signal(id, op.name, op.payload).then(() => 'done');
                case 'cancel':
                  if (op.via === 'bus') return publish('cancel', { executionId: id, ...(op.reason ? { reason: op.reason } : {}) }).then(() => 'published');
                  return engines[op.via].cancel(id, op.reason).then(() => 'done');
                case 'resume': {
                  const req = { ...op.req, ...(typeof op.req.checkpointId === 'string' ? { checkpointId: await checkpointFor(id, op.req.checkpointId) } : {}) };
                  if (op.via === 'bus') return publish('resume', { executionId: id, ...req }).then(() => 'published');
                  return engines[op.via].resume(id, req).then(() => 'done');
                }
                case 'garbage': {
                  const body = op.body !== null && typeof op.body === 'object' && !Array.isArray(op.body) ? { ...op.body, executionId: id } : op.body;
                  await jetstream(busNc).publish(op.type === 'bogus' ? 'smartspec.cmd.bogus' : commandSubject(op.type as CommandType), JSON.stringify(body), { msgID: `garbage:${id}:${Math.random()}` }).catch(() => undefined);
                  return 'published';
                }
                case 'repeat':
                  if (!lastBus) return 'nothing to repeat';
                  await bus.publish(lastBus.type, lastBus.body as never, lastBus.msgID);
                  return 'published';
              }
            };
            outcomes.push(run().catch((err: unknown) => {
              // Refused: fine, when it is a refusal. Anything else is a bug.
              if (err instanceof SmartSpecError && REFUSALS.has(err.code)) return `refused ${err.code}`;
              throw new Error(`${op.kind} via ${'via' in op ? op.via : 'bus'} failed with ${(err as Error)?.constructor?.name} ${(err as SmartSpecError).code ?? ''}: ${(err as Error).message}`);
            }));
          }
          for (const o of await Promise.all(outcomes)) bump(counts.byOutcome, o.startsWith('refused') ? o : o);
          const unsettled = await settle(id);

          try {
            // One writer: a linear hash chain, and every recorded state recomputed by replay.
            const history = await log.read(id);
            counts.records += history.length;
            const what = `${id}: ${history.map((r) => `${r.seq}:${r.record.type}${'stepId' in r.record && r.record.stepId ? `(${r.record.stepId})` : ''}`).join(' ')}`;
            expect(history.length, what).toBeGreaterThan(0);
            expect(history[0].record.type, what).toBe('ExecutionStarted');
            expect(verifyChain(history), what).toEqual([]);
            const replay = replayExecution(id, history);
            expect(replay.ok, `${what}\nreplay: ${JSON.stringify(replay.events.filter((e) => !e.ok))}`).toBe(true);
            // At most one live host once it has settled (two hosts = two would-be writers).
            // A runner behind the log's last record cannot write again (its append is refused) and
            // lets go when asked; only runners at the head of the log count as hosts.
            const head = history.at(-1)!.seq;
            const hosts = Object.entries(engines).filter(([, e]) => { const r = e.runners.get(id); return r && !r.isStopped && r.lastSeq === head; }).map(([n]) => n);
            expect(hosts.length, `${what}\nhosted by ${hosts.join(', ')}`).toBeLessThanOrEqual(1);
            const finalState = replay.events.at(-1)!.recomputed;
            bump(counts.finalStatus, String(JSON.stringify(finalState)).replace(/"/g, '').slice(0, 40));
            // An execution that has ended has no host (a host of an ended execution answers pings as its
            // owner forever, so nobody may resume it).
            if (finalState === 'completed' || finalState === 'failed' || finalState === 'cancelled') {
              expect(hosts, `${what}\nended ${finalState} but still hosted by ${hosts.join(', ')}`).toEqual([]);
            }
            // Every command is carried out or refused, and acked: none held for ever.
            expect(unsettled, what).toBeUndefined();
          } finally {
            // Let go of what is still hosted (a waiting execution; after a failure, whatever is left),
            // so a run neither piles up nor disturbs the next.
            for (const e of Object.values(engines)) e.runners.get(id)?.stop();
          }
        }),
        // Room for a loaded machine: a run cut before 15 executions fails (checkProperty).
        bounded(30, 60_000),
      );
    } finally {
      console.log(`[fuzz commands] (runs and shrinks) ${counts.runs} executions, ${counts.ops} commands, ${counts.records} records verified; outcomes ${JSON.stringify(Object.fromEntries(counts.byOutcome))}`);
      console.log(`[fuzz commands] final states ${JSON.stringify(Object.fromEntries(counts.finalStatus))}`);
    }
  }, 90_000);
});
