/**
 * Resume: time to rebuild an execution's actor at a checkpoint and record the
 * resume, for histories of 12 to 100,000 events, at the last checkpoint and
 * at one in the middle. The histories are real: steps that each fail and
 * are retried (retry-heavy steps are how histories grow long) until they
 * succeed, then a final step that fails for good, so the execution is FAILED
 * and resumable. Runners keep a snapshot every SNAPSHOT_EVERY records; resume
 * reads the nearest one and the records after it.
 *
 * Each figure is the median of SAMPLES resumes per run, the sizes taken in a
 * different order each run, so no size is always the first measurement after
 * another section's load. A resumed runner is released and its end awaited
 * before the next resume, so it does not run on in the background.
 */
import { connectNats } from '../../src/nats/connect.js';
import { EventLog } from '../../src/log/eventLog.js';
import { SnapshotStore } from '../../src/log/snapshots.js';
import { ExecutionIndex } from '../../src/registry/executionIndex.js';
import { listCheckpoints } from '../../src/log/views.js';
import { Engine } from '../../src/worker/engine.js';
import { validateDefinition } from '../../src/definition/validate.js';
import { defaultExecutors } from '../../src/steps/index.js';
import { StepError } from '../../src/errors.js';
import { defineSection } from '../lib/section.js';

const SIZES = [12, 100, 1_000, 10_000, 100_000];
const STEPS = 10;
const SAMPLES = 3;

function history(events: number) {
  // 12 events: started, 4 steps × (started + completed), the final step's started + failed, failed.
  const steps = events < 4 * STEPS ? Math.max(1, Math.round((events - 4) / 2)) : STEPS;
  const attempts = steps < STEPS ? 1 : Math.max(1, Math.round(events / (2 * steps)));
  return validateDefinition({
    id: `resume-${events}`,
    steps: [
      ...Array.from({ length: steps }, (_, i) => ({ id: `s${i}`, type: 'fail', message: 'not yet', retryable: true, retry: { maxAttempts: attempts, initialDelayMs: 0 } })),
      { id: 'end', type: 'fail', message: 'stops here, to be resumed' },
    ],
  });
}

export default defineSection({
  name: 'resume',
  title: 'Resume from a checkpoint (rebuild the actor + record ExecutionResumed)',
  figures: SIZES.flatMap((n) => [
    { key: `e${n}.lastMs`, label: `${n.toLocaleString('en')} events, last checkpoint`, unit: 'ms', better: 'lower' as const },
    { key: `e${n}.middleMs`, label: `${n.toLocaleString('en')} events, middle checkpoint`, unit: 'ms', better: 'lower' as const },
  ]),
  ratios: [
    { key: 'e100Over10k', label: 'last checkpoint: 100 ÷ 10,000 events (≤ 1 is the target)', numerator: 'e100.lastMs', denominator: 'e10000.lastMs' },
    { key: 'e1kMiddleOver10k', label: 'middle checkpoint: 1,000 ÷ 10,000 events (≤ 1 is the target)', numerator: 'e1000.middleMs', denominator: 'e10000.middleMs' },
    { key: 'growth100kOver1k', label: 'last checkpoint: 100,000 ÷ 1,000 events', numerator: 'e100000.lastMs', denominator: 'e1000.lastMs' },
    { key: 'middleGrowth100kOver1k', label: 'middle checkpoint: 100,000 ÷ 1,000 events', numerator: 'e100000.middleMs', denominator: 'e1000.middleMs' },
  ],
  async setup(ctx) {
    const nc = await connectNats(ctx.natsUrl, 'bench-resume');
    // Wired as the service wires them: the execution index says where each history starts.
    const index = await ExecutionIndex.open(nc);
    const log = await EventLog.open(nc, { startOf: async (id) => (await index.get(id))?.firstSeq });
    const snapshots = await SnapshotStore.open(nc);
    // Steps succeed at their last allowed attempt; the final step fails for good.
    const executors = defaultExecutors({
      fail: async ({ step, attempt }) => {
        if (step.retryable && attempt >= (step.retry?.maxAttempts ?? 1)) return { output: { attempt } };
        throw new StepError('FLAKY', step.message, { retryable: step.retryable });
      },
    });
    // Histories of 100,000 events: past the default history limit (SMARTSPEC_HISTORY_LIMIT), on purpose.
    const engine = await Engine.create({ nc, log, snapshots, executors, index, historyLimit: 1_000_000 });
    const targets: { n: number; id: string; last: string; middle: string }[] = [];
    for (const n of SIZES) {
      const t = performance.now();
      const runner = await engine.start({ definition: history(n), executionId: `resume-${n}-${process.pid}` });
      const { status } = await runner.done;
      if (status !== 'FAILED') throw new Error(`history of ${n} ended ${status}`);
      const records = await log.read(runner.executionId);
      const cps = listCheckpoints(records).filter((c) => c.type === 'StepCompleted');
      targets.push({ n, id: runner.executionId, last: cps[cps.length - 1].id, middle: cps[Math.floor(cps.length / 2)].id });
      ctx.log(`resume: wrote a history of ${records.length} events in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
    const resumeMs = async (id: string, checkpointId: string) => {
      const t = performance.now();
      const runner = await engine.resume(id, { checkpointId });
      const ms = performance.now() - t;
      runner.stop(); // measure the rebuild, not the re-run…
      await runner.done.catch(() => undefined); // …and let it stop before the next measurement
      return ms;
    };
    const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
    const endAll = async () => {
      for (const t of targets) await engine.cancel(t.id, 'bench: resume measured').catch(() => undefined);
    };
    let runs = 0;
    return {
      params: { steps: STEPS + 1, samplesPerFigure: SAMPLES, snapshotEvery: (await import('../../src/log/snapshots.js')).SNAPSHOT_EVERY },
      async measure() {
        const ms: Record<string, number[]> = {};
        const shift = runs++ % targets.length;
        const order = [...targets.slice(shift), ...targets.slice(0, shift)];
        for (let i = 0; i < SAMPLES; i++) {
          for (const t of order) {
            (ms[`e${t.n}.lastMs`] ??= []).push(await resumeMs(t.id, t.last));
            (ms[`e${t.n}.middleMs`] ??= []).push(await resumeMs(t.id, t.middle));
          }
        }
        // Each was left interrupted by its last resume (its runner stopped): ended now, not when the
        // bench ends, or the next section's `serve` takes each over as an execution nobody hosts
        // (src/recovery) and runs its retries on: the 100,000-event one for minutes, beside the
        // service it measures. The next run resumes them from their checkpoints all the same.
        await endAll();
        return Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, median(v)]));
      },
      async close() {
        await endAll();
        await engine.close();
        await nc.close();
      },
    };
  },
});
