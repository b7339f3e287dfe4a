/**
 * One structured log line per request, and the request id.
 *
 * The line is written when the response has actually gone out (the socket's
 * 'close'), not when `next()` returns: the error handler sits outside this
 * layer and may still turn a throw into a 500/413/429, and the log must show
 * the status the client received. The same completion record feeds metrics.
 */
import { randomUUID } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';

export const REQUEST_ID_HEADER = 'X-Request-Id';

// Echo a caller's id only when it is short and plain: it lands in logs and headers.
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface CompletedRequest {
  requestId: string;
  method: string;
  path: string;
  /** The matched route pattern (e.g. /executions/:id), or undefined when no route matched. */
  route?: string;
  status: number;
  durationMs: number;
  /** The client went away before the response was complete. */
  aborted: boolean;
}

export interface RequestLoggingOptions {
  logger: Logger;
  /** Called once per request with what was logged (metrics hook). */
  onComplete?: (request: CompletedRequest) => void;
  /** Paths logged at debug level (probes would otherwise flood the log). */
  quietPaths?: ReadonlySet<string>;
}

export function requestId(ctx: Context): string {
  const incoming = ctx.get(REQUEST_ID_HEADER);
  return SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

export function requestLogging(options: RequestLoggingOptions): Middleware {
  const { logger, onComplete, quietPaths } = options;
  return async function requestLogging(ctx, next) {
    const start = process.hrtime.bigint();
    const id = requestId(ctx);
    ctx.state.requestId = id;
    ctx.set(REQUEST_ID_HEADER, id);

    ctx.res.once('close', () => {
      const matched = (ctx as Context & { _matchedRoute?: unknown })._matchedRoute;
      const record: CompletedRequest = {
        requestId: id,
        method: ctx.method,
        path: ctx.path,
        route: typeof matched === 'string' ? matched : undefined,
        status: ctx.res.statusCode,
        durationMs: Math.round(Number(process.hrtime.bigint() - start) / 1e4) / 100,
        aborted: !ctx.res.writableFinished,
      };
      const level = record.status >= 500 ? 'error' : quietPaths?.has(record.path) ? 'debug' : 'info';
      try {
        logger[level](record, 'request');
        onComplete?.(record);
      } catch (err) {
        // An event-emitter callback must not throw: it would crash the process.
        logger.warn({ err, requestId: id }, 'request completion hook failed');
      }
    });

    await next();
  };
}
