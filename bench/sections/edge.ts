/**
 * Edge: POST /executions through the full middleware stack (errors, logging,
 * security headers, validation, authentication, rate limit raised for the
 * run, CORS; the definition validated, the tenant cap checked, the index
 * entry and the start command written), three ways in the same run:
 *
 * - `open`: no API key exists, so the edge is open (the default on loopback);
 * - `auth`: the same service with a key required and sent on every request;
 * - `bare`: a bare Koa route that publishes the same start command.
 *
 * `auth ÷ open` is what authentication costs (the contract: under 10 %). The
 * two services run against one nats-server of the section's own, each in an
 * account of its own: the KV bucket of keys is per account, so one edge sees
 * keys and the other none, with everything else equal. Each run also revokes
 * a key from another connection (as `smartspec keys revoke` would) and times
 * until the edge refuses it: the lookup cache must not delay revocation.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Koa from 'koa';
import { koaBody } from 'koa-body';
import { randomUUID } from 'node:crypto';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { startService } from '../../src/cli/service.js';
import { CommandBus } from '../../src/bus/commands.js';
import { KeyStore } from '../../src/auth/keys.js';
import { connectNats } from '../../src/nats/connect.js';
import { COMMANDS_STREAM } from '../../src/nats/names.js';
import { startNatsServer } from '../../src/nats/server.js';
import { importPeer } from '../lib/peers.js';
import { defineSection } from '../lib/section.js';
import { FORK5 } from './fork5.js';

const CONNECTIONS = 32;
/** Open and auth get ROUNDS slices of SLICE_S seconds each per run; the bare route BARE_SLICES. */
const SLICE_S = 1;
const ROUNDS = 8;
const BARE_SLICES = 3;
const VARIANTS = ['open', 'auth', 'bare'] as const;
type Variant = (typeof VARIANTS)[number];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Two accounts with JetStream each: `open` and `auth` (the server of the runner has no accounts). */
const ACCOUNTS_CONF = `
listen: 127.0.0.1:-1
max_payload: 8MB
jetstream { max_file_store: 10GB, max_memory_store: 256MB }
accounts {
  OPEN: { jetstream: enabled, users: [ { user: open, password: bench-open } ] }
  AUTH: { jetstream: enabled, users: [ { user: auth, password: bench-auth } ] }
}
`;

export default defineSection({
  name: 'edge',
  title: `Edge: POST /executions with autocannon (${CONNECTIONS} connections), auth off and on interleaved (${ROUNDS} × ${SLICE_S} s each)`,
  figures: [
    { key: 'full.requestsPerSec', label: 'full stack, no key (open)', unit: 'requests/s', better: 'higher' },
    { key: 'full.p50Ms', label: 'open p50 (median of slices)', unit: 'ms', better: 'lower' },
    { key: 'full.p99Ms', label: 'open p99 (median of slices)', unit: 'ms', better: 'lower' },
    { key: 'auth.requestsPerSec', label: 'full stack, API key required', unit: 'requests/s', better: 'higher' },
    { key: 'auth.p50Ms', label: 'auth p50 (median of slices)', unit: 'ms', better: 'lower' },
    { key: 'auth.p99Ms', label: 'auth p99 (median of slices)', unit: 'ms', better: 'lower' },
    { key: 'bare.requestsPerSec', label: 'bare Koa route, same publish', unit: 'requests/s', better: 'higher' },
    { key: 'bare.p50Ms', label: 'bare route p50 (median of slices)', unit: 'ms', better: 'lower' },
    { key: 'revocation.ms', label: 'revoked key refused after', unit: 'ms', better: 'lower' },
  ],
  ratios: [
    { key: 'authOverOpen', label: 'auth ÷ open (≥ 0.90: auth costs < 10 %)', numerator: 'auth.requestsPerSec', denominator: 'full.requestsPerSec' },
    { key: 'fullOverBare', label: 'open full stack ÷ bare route', numerator: 'full.requestsPerSec', denominator: 'bare.requestsPerSec' },
  ],
  async setup(ctx) {
    const { default: autocannon } = await importPeer('autocannon', () => import('autocannon'));
    const configFile = join(ctx.tmpDir, 'accounts.conf');
    await writeFile(configFile, ACCOUNTS_CONF);
    const nats = await startNatsServer({ storeDir: join(ctx.tmpDir, 'nats'), configFile });
    const as = (user: 'open' | 'auth') => ({ NATS_USER: user, NATS_PASSWORD: `bench-${user}` });
    const closers: (() => Promise<unknown>)[] = [() => nats.stop()];
    const close = async () => {
      for (const c of closers.reverse()) await c().catch(() => undefined);
    };
    try {
      // The tenant cap is raised like the rate limit: no worker runs here, so every execution stays PENDING.
      // Each account's log reserves its maximum size: two default (5 GiB) logs would not fit the server's store.
      const common = {
        PATH: process.env.PATH, NATS_URL: nats.url, PORT: '0', LOG_LEVEL: 'silent',
        RATE_LIMIT_MAX: '100000000', SMARTSPEC_TENANT_MAX_RUNNING: '100000000', SMARTSPEC_STREAM_MAX_BYTES: '1GiB',
      };
      const ncs = {
        open: await connectNats(nats.url, 'bench-edge-open', as('open')),
        auth: await connectNats(nats.url, 'bench-edge-auth', as('auth')),
      };
      closers.push(() => ncs.open.close(), () => ncs.auth.close());
      // The key exists before the edge starts; SMARTSPEC_AUTH=required makes sure the edge checks it.
      const keys = await KeyStore.open(ncs.auth);
      const { key } = await keys.create({ tenant: 'bench', scopes: ['read', 'write'] });
      const open = await startService({ edge: true, worker: false }, { ...common, ...as('open') });
      closers.push(() => open.stop());
      const auth = await startService({ edge: true, worker: false }, { ...common, ...as('auth'), SMARTSPEC_AUTH: 'required' });
      closers.push(() => auth.stop());

      const bus = await CommandBus.open(ncs.open);
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
      closers.push(() => new Promise((r) => server.close(r)));
      const urls = { open: open.url!, auth: auth.url!, bare: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
      const jsm: Record<'open' | 'auth', JetStreamManager> = { open: await jetstreamManager(ncs.open), auth: await jetstreamManager(ncs.auth) };

      const body = JSON.stringify({ definition: FORK5, input: { n: 1 } });
      const slice = async (which: Variant) => {
        // No worker consumes here: empty the command queue first.
        await jsm[which === 'auth' ? 'auth' : 'open'].streams.purge(COMMANDS_STREAM);
        const headers: Record<string, string> = { 'content-type': 'application/json', ...(which === 'auth' ? { authorization: `Bearer ${key}` } : {}) };
        const r = await autocannon({ url: `${urls[which]}/executions`, method: 'POST', headers, body, connections: CONNECTIONS, duration: SLICE_S });
        if (r.non2xx > 0 || r.errors > 0) throw new Error(`${which}: ${r.non2xx} non-2xx responses, ${r.errors} errors`);
        return { requests: r.requests.total, seconds: r.duration, p50: r.latency.p50, p99: r.latency.p99 };
      };

      /** From the revoke's acknowledgement to the first 401 for that key (polled every 5 ms). */
      const revocationMs = async () => {
        const { key: doomed, record } = await keys.create({ tenant: 'bench', scopes: ['read'] });
        const probe = () => fetch(`${urls.auth}/executions/${randomUUID()}`, { headers: { authorization: `Bearer ${doomed}` } }).then(async (r) => (await r.arrayBuffer(), r.status));
        const deadline = Date.now() + 5000;
        while ((await probe()) === 401) {
          if (Date.now() > deadline) throw new Error('a new key was not accepted within 5 s');
          await new Promise((r) => setTimeout(r, 5));
        }
        await keys.revoke(record.keyId);
        const t = performance.now();
        while ((await probe()) !== 401) {
          if (performance.now() - t > 5000) throw new Error('a revoked key still worked after 5 s');
          await new Promise((r) => setTimeout(r, 5));
        }
        return performance.now() - t;
      };

      return {
        params: { connections: CONNECTIONS, sliceS: SLICE_S, slicesOpenAuth: ROUNDS, slicesBare: BARE_SLICES, authKeyScopes: 'read,write' },
        async measure(run) {
          // Open and auth take turns in short slices, A B B A A B …, so each follows itself and the
          // other equally often and the load the shared machine takes on or sheds falls on both alike.
          // The bare route (2-3× the rate, a different aftermath for the server) runs after them.
          const slices = Object.fromEntries(VARIANTS.map((v) => [v, [] as Awaited<ReturnType<typeof slice>>[]])) as Record<Variant, Awaited<ReturnType<typeof slice>>[]>;
          const pair: Variant[] = run.index % 2 === 0 ? ['open', 'auth'] : ['auth', 'open'];
          for (let round = 0; round < ROUNDS; round++) {
            for (const which of round % 2 === 0 ? pair : [...pair].reverse()) slices[which].push(await slice(which));
          }
          for (let i = 0; i < BARE_SLICES; i++) slices.bare.push(await slice('bare'));
          const out: Record<string, number> = {};
          for (const which of VARIANTS) {
            const all = slices[which];
            const prefix = which === 'open' ? 'full' : which;
            out[`${prefix}.requestsPerSec`] = all.reduce((a, s) => a + s.requests, 0) / all.reduce((a, s) => a + s.seconds, 0);
            out[`${prefix}.p50Ms`] = median(all.map((s) => s.p50));
            if (which !== 'bare') out[`${prefix}.p99Ms`] = median(all.map((s) => s.p99));
          }
          out['revocation.ms'] = await revocationMs();
          return out;
        },
        close,
      };
    } catch (err) {
      await close();
      throw err;
    }
  },
});
