/**
 * An HTTP server whose answers the test releases: `GET /gate/<key>` counts
 * the request and answers only once `open(key)` was called (at once if it
 * was). An `http` step pointed at it stays in flight exactly as long as the
 * test wants, with no timing guesswork.
 */
import { createServer, type ServerResponse } from 'node:http';

export interface Gate {
  base: string;
  /** The URL an http step calls for `key`. */
  url(key: string): string;
  /** Requests received for `key` so far. */
  hits(key: string): number;
  /** Answer the waiting and all later requests for `key`. */
  open(key: string): void;
  close(): Promise<void>;
}

export function startGate(): Promise<Gate> {
  const hits = new Map<string, number>();
  const opened = new Set<string>();
  const waiting = new Map<string, ServerResponse[]>();
  const answer = (res: ServerResponse, key: string) => {
    if (!res.destroyed) res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ key, n: hits.get(key) }));
  };
  const server = createServer((req, res) => {
    const m = /^\/gate\/([^/?]+)$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    const key = m[1];
    hits.set(key, (hits.get(key) ?? 0) + 1);
    if (opened.has(key)) return answer(res, key);
    waiting.set(key, [...(waiting.get(key) ?? []), res]);
  });
  server.keepAliveTimeout = 500;
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      resolve({
        base,
        url: (key) => `${base}/gate/${key}`,
        hits: (key) => hits.get(key) ?? 0,
        open: (key) => {
          opened.add(key);
          for (const res of waiting.get(key) ?? []) answer(res, key);
          waiting.delete(key);
        },
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    }),
  );
}
