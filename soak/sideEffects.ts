/**
 * The HTTP server the soak's `http` steps call: it counts every request per
 * (executionId, stepId), taken from the path, so the audit can compare the
 * side effects that happened with the attempts the log recorded.
 *
 *   /hit/<executionId>/<stepId>[?delayMs=N]   200 (after N ms)
 *   /flaky/<executionId>/<stepId>             503 on the first request for that key, then 200
 *   /fail/<executionId>/<stepId>              500 always
 */
import { createServer, type Server } from 'node:http';

export interface SideEffectServer {
  base: string;
  /** Requests so far for one execution, by step id. */
  hitsOf(executionId: string): Map<string, number>;
  total(): number;
  close(): Promise<void>;
}

const PATH = /^\/(hit|flaky|fail)\/([A-Za-z0-9_-]+)\/([A-Za-z0-9_-]+)$/;

export async function startSideEffectServer(): Promise<SideEffectServer> {
  const hits = new Map<string, Map<string, number>>();
  let total = 0;
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const m = PATH.exec(url.pathname);
    if (!m) { res.writeHead(404).end(); return; }
    const [, mode, executionId, stepId] = m;
    const byStep = hits.get(executionId) ?? new Map<string, number>();
    hits.set(executionId, byStep);
    const n = (byStep.get(stepId) ?? 0) + 1;
    byStep.set(stepId, n);
    total++;
    req.resume(); // the body is not needed; drain it so the socket can be reused
    const status = mode === 'fail' ? 500 : mode === 'flaky' && n === 1 ? 503 : 200;
    const answer = () => {
      if (!res.destroyed) res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ executionId, stepId, n }));
    };
    const delay = Math.min(Number(url.searchParams.get('delayMs') ?? 0) || 0, 60_000);
    if (delay > 0) setTimeout(answer, delay); else answer();
  });
  server.keepAliveTimeout = 2000;
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', () => res()));
  const { port } = server.address() as { port: number };
  return {
    base: `http://127.0.0.1:${port}`,
    hitsOf: (id) => hits.get(id) ?? new Map(),
    total: () => total,
    close: () => new Promise<void>((res) => { server.close(() => res()); server.closeAllConnections(); }),
  };
}
