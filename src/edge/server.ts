/**
 * The HTTP server around the Koa app. Keep-alive outlives a typical load
 * balancer's 60 s idle timeout (else the LB reuses a socket we just closed and
 * answers 502), and close() is graceful: stop accepting, drop idle sockets,
 * let in-flight requests finish, then cut what remains (e.g. SSE streams).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Koa from 'koa';

export interface EdgeServer {
  url: string;
  port: number;
  server: Server;
  /** Graceful: waits for in-flight requests up to the grace period. */
  close(): Promise<void>;
}

export interface EdgeServerOptions {
  keepAliveTimeoutMs?: number;
  /** How long close() lets in-flight requests run before cutting connections. */
  shutdownGraceMs?: number;
}

export async function startEdgeServer(app: Koa, port: number, host?: string, options: EdgeServerOptions = {}): Promise<EdgeServer> {
  const { keepAliveTimeoutMs = 65_000, shutdownGraceMs = 10_000 } = options;
  const server = createServer(app.callback());
  server.keepAliveTimeout = keepAliveTimeoutMs;
  // Must exceed keepAliveTimeout, or Node may drop a socket a client is about to reuse.
  server.headersTimeout = keepAliveTimeoutMs + 1_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });

  const address = server.address() as AddressInfo;
  const shownHost = !host || host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;

  let closing: Promise<void> | undefined;
  return {
    url: `http://${shownHost}:${address.port}`,
    port: address.port,
    server,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        const force = setTimeout(() => server.closeAllConnections(), shutdownGraceMs);
        // A keep-alive socket turns idle when its in-flight response ends: sweep until all are gone.
        const sweep = setInterval(() => server.closeIdleConnections(), 50);
        force.unref();
        sweep.unref();
        server.close((err) => {
          clearTimeout(force);
          clearInterval(sweep);
          if (err) reject(err);
          else resolve();
        });
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}
