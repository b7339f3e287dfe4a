/**
 * Resume over HTTP, as a user does it: `smartspec serve` (edge and worker in
 * one child process) on a nats-server of the section's own. Each sample is a fresh
 * 12-record FAILED execution (four steps, then one that fails); the time is
 * POST /executions/:id/resume → its ExecutionResumed record seen on the log.
 */
import { randomUUID } from 'node:crypto';
import type { NatsConnection } from '@nats-io/transport-node';
import { join } from 'node:path';
import { connectNats } from '../../src/nats/connect.js';
import { startNatsServer } from '../../src/nats/server.js';
import { executionSubject } from '../../src/nats/names.js';
import { percentile } from '../lib/stats.js';
import { defineSection } from '../lib/section.js';
import { startDeployment } from './service.js';

const RESUMES = 30;
const SHORT = {
  id: 'resume-http',
  steps: [
    ...['A', 'B', 'C', 'D'].map((id) => ({ id, type: 'transform', value: { step: id } })),
    { id: 'end', type: 'fail', message: 'stops here, to be resumed' },
  ],
};

/** The first record of `type` that the execution appends from now on. */
function nextRecord(nc: NatsConnection, executionId: string, type: string): Promise<void> {
  return new Promise((resolve) => {
    const sub = nc.subscribe(executionSubject(executionId), {
      callback: (_err, msg) => {
        if (msg.json<{ type: string }>().type !== type) return;
        sub.unsubscribe();
        resolve();
      },
    });
  });
}

export default defineSection({
  name: 'resume-http',
  title: 'Resume over HTTP: POST /executions/:id/resume → ExecutionResumed, serve (child process)',
  figures: [
    { key: 'p50Ms', label: 'resume of a 12-record FAILED execution, p50', unit: 'ms', better: 'lower' },
    { key: 'p99Ms', label: 'resume of a 12-record FAILED execution, p99', unit: 'ms', better: 'lower' },
  ],
  ratios: [
    { key: 'httpOverLanggraph', label: 'over HTTP p50 ÷ LangGraph in-process resume p50', numerator: 'p50Ms', denominator: 'peer-langgraph:resume.p50Ms' },
  ],
  async setup(ctx) {
    // A nats-server of its own: the serve below stays up for the whole bench, and on the bench's
    // server it consumed the commands of every later section (a second serve beside theirs).
    const nats = await startNatsServer({ storeDir: join(ctx.tmpDir, 'nats') });
    const own = { ...ctx, natsUrl: nats.url, natsPid: nats.pid };
    const nc = await connectNats(own.natsUrl, 'bench-resume-http');
    const running = await startDeployment(own, 'serve');
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${running.edgeUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      if (r.status !== 202) throw new Error(`POST ${path}: ${r.status} ${await r.text()}`);
    };
    const failed = async () => {
      const executionId = `rh-${randomUUID()}`;
      const end = nextRecord(nc, executionId, 'ExecutionFailed');
      await post('/executions', { definition: SHORT, executionId });
      await end;
      return executionId;
    };
    return {
      params: { resumesPerRun: RESUMES, records: 12 },
      async measure() {
        const ms: number[] = [];
        for (let i = 0; i < RESUMES; i++) {
          const id = await failed();
          const resumed = nextRecord(nc, id, 'ExecutionResumed');
          const refailed = nextRecord(nc, id, 'ExecutionFailed');
          const t = performance.now();
          await post(`/executions/${id}/resume`, {});
          await resumed;
          ms.push(performance.now() - t);
          await refailed; // its re-run is over before the next sample
        }
        return { p50Ms: percentile(ms, 50), p99Ms: percentile(ms, 99) };
      },
      async close() {
        await running.stop();
        await nc.close();
        await nats.stop();
      },
    };
  },
});
