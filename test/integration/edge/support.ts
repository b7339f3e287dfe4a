/**
 * Test harness for the edge: a real Koa app from createEdgeApp on a real
 * loopback port, with a pino logger whose JSON lines are captured in memory.
 */
import Router from '@koa/router';
import { afterEach } from 'vitest';
import { createEdgeApp, type EdgeAppOptions } from '../../../src/edge/app.js';
import { loadEdgeConfig } from '../../../src/edge/config.js';
import { createEdgeLogger } from '../../../src/edge/logger.js';
import { startEdgeServer, type EdgeServer } from '../../../src/edge/server.js';
import { SECURITY_HEADERS } from '../../support/securityHeaders.js';

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

export interface TestEdge {
  url: string;
  server: EdgeServer;
  logs: LogLine[];
  /** Resolves with the first log line matching `pred`, polling briefly (lines are written on response close). */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

const started: { server: EdgeServer; close(): Promise<void> }[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map(async (s) => {
    await s.server.close();
    await s.close();
  }));
});

export interface StartOptions extends Partial<Omit<EdgeAppOptions, 'config' | 'logger'>> {
  env?: Record<string, string>;
}

export async function startEdge(options: StartOptions = {}): Promise<TestEdge> {
  const { env = {}, ...rest } = options;
  const config = loadEdgeConfig({ LOG_LEVEL: 'debug', ...env });
  const logs: LogLine[] = [];
  const logger = createEdgeLogger(config, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const app = createEdgeApp({ config, logger, ...rest });
  const server = await startEdgeServer(app, 0, '127.0.0.1', { shutdownGraceMs: 500 });
  started.push({ server, close: () => app.close() });
  return {
    url: server.url,
    server,
    logs,
    async waitForLog(pred, timeoutMs = 1000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = logs.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no matching log line; got ${JSON.stringify(logs)}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}

/** A test router: echo, throw, and a body-validated route. */
export function testRouter(build: (router: Router) => void): Router {
  const router = new Router();
  build(router);
  return router;
}

export { SECURITY_HEADERS };

export function securityHeadersOf(res: Response): Record<string, string | null> {
  return Object.fromEntries(Object.keys(SECURITY_HEADERS).map((h) => [h, res.headers.get(h)]));
}

export function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
}
