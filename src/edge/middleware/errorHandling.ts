/**
 * Outermost middleware: everything that goes wrong below becomes an RFC 9457
 * problem+json response. Being outermost, it also catches failures of the
 * logging, security and rate-limit layers themselves.
 *
 * Headers already set by inner layers are kept on purpose (security headers,
 * X-Request-Id, rate-limit headers, CORS): Koa's own onerror would wipe them.
 * Only headers that describe the body the route meant to send are dropped.
 */
import type { Context, Middleware } from 'koa';
import type { Logger } from 'pino';
import { PROBLEM_CONTENT_TYPE, problemForStatus, toProblem, type Problem, type ProblemContext } from '../problem.js';

const REPRESENTATION_HEADERS = [
  'content-disposition',
  'content-encoding',
  'content-language',
  'content-location',
  'content-range',
  'etag',
  'last-modified',
  'location',
];

function problemContext(ctx: Context): ProblemContext {
  return { instance: ctx.path, requestId: typeof ctx.state.requestId === 'string' ? ctx.state.requestId : undefined };
}

/** Write a problem as the response (status, body, content type). */
export function sendProblem(ctx: Context, problem: Problem, headers: Record<string, string> = {}): void {
  for (const h of REPRESENTATION_HEADERS) ctx.remove(h);
  for (const [k, v] of Object.entries(headers)) ctx.set(k, v);
  ctx.status = problem.status;
  ctx.body = JSON.stringify(problem);
  ctx.type = PROBLEM_CONTENT_TYPE;
}

export function errorHandling(options: { logger: Logger }): Middleware {
  const { logger } = options;
  return async function errorHandling(ctx, next) {
    try {
      await next();
    } catch (err) {
      const pc = problemContext(ctx);
      if (ctx.headerSent || !ctx.writable) {
        // A streamed response (e.g. SSE) failed midway: nothing left to tell the client.
        logger.error({ err, requestId: pc.requestId, method: ctx.method, path: ctx.path }, 'error after the response started');
        return;
      }
      const { problem, headers, internal } = toProblem(err, pc);
      if (internal) logger.error({ err, requestId: pc.requestId, method: ctx.method, path: ctx.path }, 'request failed');
      sendProblem(ctx, problem, headers);
      return;
    }
    // No route answered (Koa's implicit 404), or a layer set an error status with no body (the router's 405/501).
    if (ctx.respond !== false && ctx.status >= 400 && ctx.body == null && !ctx.headerSent) {
      sendProblem(ctx, problemForStatus(ctx.status, problemContext(ctx), bareStatusDetail(ctx)));
    }
  };
}

function bareStatusDetail(ctx: Context): string | undefined {
  if (ctx.status === 404) return `no route matches ${ctx.method} ${ctx.path}`;
  if (ctx.status === 405) return `${ctx.method} is not allowed on ${ctx.path}; allowed: ${ctx.response.get('Allow')}`;
  if (ctx.status === 501) return `method ${ctx.method} is not implemented`;
  return undefined;
}
