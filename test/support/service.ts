/**
 * The service in-process for tests: edge + worker (or either) against the
 * file's real nats-server, on a free port, with the given environment.
 */
import { afterAll } from 'vitest';
import { startService, type RunningService } from '../../src/cli/service.js';
import type { NatsFixture } from './nats.js';

export interface ServiceOptions {
  edge?: boolean;
  worker?: boolean;
  env?: Record<string, string>;
}

/** Returns a starter; every service it starts is stopped after the file. */
export function useService(nats: NatsFixture): (options?: ServiceOptions) => Promise<RunningService & { url: string }> {
  const started: RunningService[] = [];
  afterAll(async () => {
    for (const s of started) await s.stop();
  });
  return async ({ edge = true, worker = true, env = {} } = {}) => {
    const service = await startService(
      { edge, worker },
      // NATS_PARTITIONS passes through: `NATS_PARTITIONS=3 npx vitest run …` runs a test partitioned.
      { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'silent', RATE_LIMIT_MAX: '100000', ACK_WAIT_MS: '2000', HTTP_STEP_ALLOW: '127.0.0.1,::1,localhost', ...partitionsEnv(), ...env, NATS_URL: nats.url },
    );
    started.push(service);
    return service as RunningService & { url: string };
  };
}

const partitionsEnv = (): Record<string, string> => (process.env.NATS_PARTITIONS ? { NATS_PARTITIONS: process.env.NATS_PARTITIONS } : {});

/** JSON over real HTTP. */
export async function http(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, json, text };
}

/** Poll GET /executions/:id until the status is one of `statuses`. */
export async function waitForStatus(base: string, id: string, statuses: string[], timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await http(base, 'GET', `/executions/${id}`);
    if (r.status === 200 && statuses.includes(r.json.status)) return r.json;
    if (Date.now() > deadline) throw new Error(`execution ${id} did not reach ${statuses.join('/')} (last: ${r.status} ${JSON.stringify(r.json)?.slice(0, 300)})`);
    await new Promise((res) => setTimeout(res, 50));
  }
}
