/**
 * Section 1, Ceiling: the append an engine does, with no engine around it.
 *
 * ~300-byte JSON event records spread over 1,000 subjects
 * `bench.exec.<id>` (same shape as `smartspec.exec.<id>`, its own subjects so it never overlaps the engine's stream) of a file-storage stream, each publish carrying a
 * message id and the expected-last-subject-sequence check, pipelined (128 in
 * flight). An execution's appends are sequential (the next one needs the
 * previous ack's sequence), so the 128 in-flight appends belong to 128
 * different executions: 1,000 executions advance round-robin, one event each
 * turn. Measured twice per run, with the default client and with
 * `noAsyncTraces: true`, alternating which goes first.
 *
 * Each measurement uses a fresh stream (same starting state for both
 * variants), deleted afterwards so later sections can create the product's
 * own `smartspec.exec.*` stream on the same server.
 */
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { defineSection, type BenchContext } from '../lib/section.js';

const STREAM = 'BENCH_CEILING_EXECUTIONS';
const SUBJECTS = 1_000;
const IN_FLIGHT = 128;
const APPENDS_PER_RUN = 20_000;
const RECORD_BYTES = 300;

type Variant = 'default' | 'noAsyncTraces';

export default defineSection({
  name: 'ceiling',
  title: 'Ceiling: raw JetStream appends (msgID + expected last subject sequence)',
  figures: [
    { key: 'default.eventsPerSec', label: 'appends, default client', unit: 'events/s', better: 'higher' },
    { key: 'noAsyncTraces.eventsPerSec', label: 'appends, noAsyncTraces: true', unit: 'events/s', better: 'higher' },
  ],
  ratios: [
    { key: 'noAsyncTracesOverDefault', label: 'noAsyncTraces / default', numerator: 'noAsyncTraces.eventsPerSec', denominator: 'default.eventsPerSec' },
  ],
  async setup(ctx) {
    const appends = roundTo(ctx.count(APPENDS_PER_RUN), SUBJECTS);
    const probe = encodeRecord('x'.repeat(21), 0, 'bench-probe');
    return {
      params: { appendsPerRun: appends, subjects: SUBJECTS, inFlight: IN_FLIGHT, recordBytes: probe.length, storage: 'file', stream: STREAM },
      async measure(run) {
        const n = run.warmup ? roundTo(Math.ceil(appends / 4), SUBJECTS) : appends;
        const order: Variant[] = run.index % 2 === 0 ? ['default', 'noAsyncTraces'] : ['noAsyncTraces', 'default'];
        const out: Record<string, number> = {};
        for (const v of order) out[`${v}.eventsPerSec`] = await measureAppends(ctx, v, n, run.index);
        return out;
      },
      async close() {},
    };
  },
});

/** Appends `total` records over SUBJECTS subjects; returns events/s (first publish → last ack). */
async function measureAppends(ctx: BenchContext, variant: Variant, total: number, runIndex: number): Promise<number> {
  const nc = await connect({ servers: ctx.natsUrl, noAsyncTraces: variant === 'noAsyncTraces', name: `bench-ceiling-${variant}` });
  try {
    const jsm = await jetstreamManager(nc);
    await freshStream(jsm);
    const js = jetstream(nc);

    const perSubject = total / SUBJECTS;
    const tag = `r${runIndex + 1}${variant === 'default' ? 'd' : 'n'}`;
    const ids = Array.from({ length: SUBJECTS }, (_, i) => `${tag}-${i.toString(36).padStart(4, '0')}-${'0'.repeat(14)}`);
    const lastSeq = new Float64Array(SUBJECTS); // 0 = no message on the subject yet
    const done = new Uint32Array(SUBJECTS);
    // Executions not in flight, in round-robin order.
    const ready: number[] = ids.map((_, i) => i);
    let head = 0;

    const lane = async () => {
      while (head < ready.length) {
        const e = ready[head++];
        const id = ids[e];
        const n = done[e];
        const ack = await js.publish(`bench.exec.${id}`, encodeRecord(id, n, tag), {
          msgID: `${id}:${n}`,
          expect: { lastSubjectSequence: lastSeq[e] },
        });
        if (ack.duplicate) throw new Error(`append ${id}:${n} reported as duplicate`);
        lastSeq[e] = ack.seq;
        if (++done[e] < perSubject) ready.push(e);
      }
    };

    const t0 = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
    const seconds = (performance.now() - t0) / 1000;

    const info = await jsm.streams.info(STREAM);
    if (info.state.messages !== total) throw new Error(`stream holds ${info.state.messages} messages, expected ${total}`);
    await jsm.streams.delete(STREAM);
    return total / seconds;
  } finally {
    await nc.close();
  }
}

async function freshStream(jsm: JetStreamManager): Promise<void> {
  try {
    await jsm.streams.delete(STREAM);
  } catch {
    // not there
  }
  await jsm.streams.add({ name: STREAM, subjects: ['bench.exec.*'], storage: StorageType.File });
}

const encoder = new TextEncoder();
const HASH = 'a3f1'.repeat(16); // stands for the SHA-256 chain link (64 hex chars)
const STEPS = ['A', 'B', 'C', 'D', 'E'];

/** A StepCompleted-shaped record of about RECORD_BYTES bytes, as the engine would append. */
function encodeRecord(executionId: string, n: number, tag: string): Uint8Array {
  const stepId = STEPS[n % STEPS.length];
  const rec = {
    type: 'StepCompleted',
    executionId,
    workflowId: 'fork5',
    at: new Date().toISOString(),
    state: { [stepId]: 'done', run: tag },
    stepId,
    attempt: 1,
    output: { value: n, pad: '' },
    hash: HASH,
  };
  const json = JSON.stringify(rec);
  return encoder.encode(json.replace('"pad":""', `"pad":"${'x'.repeat(Math.max(0, RECORD_BYTES - json.length))}"`));
}

function roundTo(n: number, multiple: number): number {
  return Math.max(multiple, Math.round(n / multiple) * multiple);
}
