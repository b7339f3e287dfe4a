/**
 * Edge: POST /executions through the full middleware stack (errors, logging,
 * security headers, validation, rate limit raised for the run, CORS; the
 * definition validated, the index entry and the start command written),
 * against a bare Koa route that publishes the same start command — the cost
 * of everything the edge does besides publishing.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { koaBody } from 'koa-body';
import { randomUUID } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { startService } from '../../src/cli/service.js';
import { CommandBus } from '../../src/bus/commands.js';
import { connectNats } from '../../src/nats/connect.js';
import { COMMANDS_STREAM } from '../../src/nats/names.js';
import { importPeer } from '../lib/peers.js';
import { defineSection } from '../lib/section.js';
import { FORK5 } from './fork5.js';

const CONNECTIONS = 32;
const DURATION_S = 4;

export default defineSection({
  name: 'edge',
  title: `Edge: POST /executions with autocannon (${CONNECTIONS} connections, ${DURATION_S} s)`,
  figures: [
    { key: 'full.requestsPerSec', label: 'full middleware stack', unit: 'requests/s', better: 'higher' },
    { key: 'full.p50Ms', label: 'full stack p50', unit: 'ms', better: 'lower' },
    { key: 'full.p99Ms', label: 'full stack p99', unit: 'ms', better: 'lower' },
    { key: 'bare.requestsPerSec', label: 'bare Koa route, same publish', unit: 'requests/s', better: 'higher' },
    { key: 'bare.p50Ms', label: 'bare route p50', unit: 'ms', better: 'lower' },
  ],
  ratios: [{ key: 'fullOverBare', label: 'full stack ÷ bare route', numerator: 'full.requestsPerSec', denominator: 'bare.requestsPerSec' }],
  async setup(ctx) {
    const { default: autocannon } = await importPeer('autocannon', () => import('autocannon'));
    const service = await startService(
      { edge: true, worker: false },
      { PATH: process.env.PATH, NATS_URL: ctx.natsUrl, PORT: '0', LOG_LEVEL: 'silent', RATE_LIMIT_MAX: '100000000' },
    );
    const nc = await connectNats(ctx.natsUrl, 'bench-edge-bare');
    const bus = await CommandBus.open(nc);
    const bare = new Koa();
    bare.use(koaBody());
    bare.use(async (c) => {
      const body = c.request.body as { definition: unknown; input?: unknown };
      const executionId = randomUUID();
      await bus.publish('start', { executionId, definition: body.definition, input: body.input ?? {} }, `start:${executionId}`);
      c.status = 202;
      c.body = { executionId };
    });
    const server: Server = createServer(bare.callback());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const bareUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const jsm = await jetstreamManager(nc);

    const body = JSON.stringify({ definition: FORK5, input: { n: 1 } });
    const load = async (url: string) => {
      const r = await autocannon({ url: `${url}/executions`, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: CONNECTIONS, duration: DURATION_S });
      if (r.non2xx > 0 || r.errors > 0) throw new Error(`${url}: ${r.non2xx} non-2xx responses, ${r.errors} errors`);
      return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99 };
    };
    return {
      params: { connections: CONNECTIONS, durationS: DURATION_S },
      async measure(run) {
        // No worker consumes here: empty the command queue between runs.
        const order = run.index % 2 === 0 ? ['full', 'bare'] : ['bare', 'full'];
        const out: Record<string, number> = {};
        for (const which of order) {
          await jsm.streams.purge(COMMANDS_STREAM);
          const r = await load(which === 'full' ? service.url! : bareUrl);
          out[`${which}.requestsPerSec`] = r.rps;
          out[`${which}.p50Ms`] = r.p50;
          if (which === 'full') out['full.p99Ms'] = r.p99;
        }
        return out;
      },
      async close() {
        await new Promise((r) => server.close(r));
        await nc.close();
        await service.stop();
      },
    };
  },
});
