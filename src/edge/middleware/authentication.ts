/**
 * Bearer authentication and scopes, just before the rate limit (which then
 * counts per key rather than per IP). Placed after request validation, so a
 * malformed or oversized request is refused before a key lookup; the lookup
 * itself is a memory read (src/auth/keys.ts), so nothing here waits on NATS.
 *
 * Authentication is on when SMARTSPEC_AUTH=required or as soon as any key
 * exists (revoked ones too). Before that the edge is open as it always was,
 * every request acting as the default tenant's `anonymous` principal: the
 * composition root only allows that on loopback (or with --insecure).
 *
 * Always open: /healthz, /readyz, the API's contracts (routes/contracts.ts: they hold no data), CORS preflights (browsers never send
 * credentials on them; CORS answers them) and the explorer's files under /ui/
 * (a browser cannot send a key when it loads a page; the pages hold no data
 * and send the key the user gives them with every API call). /metrics needs `admin` or the
 * separate metrics token (SMARTSPEC_METRICS_TOKEN) a scraper can hold.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import { ForbiddenError, UnauthenticatedError } from '../../auth/errors.js';
import type { KeyStore } from '../../auth/keys.js';
import { ANONYMOUS, hasScope, SCOPES, type Caller, type Scope } from '../../auth/principal.js';
import { isContractPath } from '../routes/contracts.js';

export interface AuthenticationOptions {
  /** Absent: no key can exist, the edge stays open (unless `required`). */
  keys?: Pick<KeyStore, 'anyKeys' | 'authenticate'>;
  /** SMARTSPEC_AUTH=required: a key is needed even before any exists. */
  required?: boolean;
  /** SMARTSPEC_METRICS_TOKEN: a bearer token good for GET /metrics only. */
  metricsToken?: string;
}

export const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/readyz']);

/** The explorer's static files (routes/ui.ts): GET or HEAD of /ui or anything below it. */
export function isExplorerFile(ctx: Pick<Context, 'method' | 'path'>): boolean {
  return (ctx.method === 'GET' || ctx.method === 'HEAD') && (ctx.path === '/ui' || ctx.path.startsWith('/ui/'));
}

/** Everything is allowed in open mode: there is no one to tell apart. */
const OPEN_CALLER: Caller = { principal: ANONYMOUS, scopes: new Set(SCOPES) };

/** The scope a request needs: one table for the whole API. */
export function requiredScope(method: string, path: string): Scope {
  if (path === '/v1' || path.startsWith('/v1/')) return 'llm';
  if (path === '/keys' || path.startsWith('/keys/') || path === '/metrics') return 'admin';
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' ? 'read' : 'write';
}

/** The caller the authentication layer admitted (the open-mode caller when auth is off). */
export function callerOf(ctx: Context): Caller {
  return (ctx.state.caller as Caller | undefined) ?? OPEN_CALLER;
}

const digest = (s: string) => createHash('sha256').update(s).digest();
const BEARER = /^Bearer +(\S+) *$/i;

export function authentication(options: AuthenticationOptions = {}): Middleware {
  const { keys, required = false, metricsToken } = options;
  const metricsDigest = metricsToken ? digest(metricsToken) : undefined;

  return async function authentication(ctx, next) {
    if (OPEN_PATHS.has(ctx.path) || isContractPath(ctx.path) || isExplorerFile(ctx) || isPreflight(ctx)) return next();
    const header = ctx.get('Authorization');
    const token = BEARER.exec(header)?.[1];
    if (ctx.path === '/metrics' && token && metricsDigest && timingSafeEqual(digest(token), metricsDigest)) return next();
    if (!required && !keys?.anyKeys) {
      ctx.state.caller = OPEN_CALLER;
      return next();
    }
    ctx.set('WWW-Authenticate', 'Bearer realm="smartspec"');
    if (!header) throw new UnauthenticatedError('this request needs an API key: send Authorization: Bearer <api key>');
    if (!token) throw new UnauthenticatedError('the Authorization header must be "Bearer <api key>"');
    const caller = keys?.authenticate(token);
    if (!caller) throw new UnauthenticatedError('the API key is not valid (unknown, malformed or revoked)');
    ctx.remove('WWW-Authenticate');
    const scope = requiredScope(ctx.method, ctx.path);
    if (!hasScope(caller, scope)) throw ForbiddenError.forRoute(scope, ctx.method, ctx.path);
    ctx.state.caller = caller;
    ctx.state.apiKeyId = caller.principal.keyId; // the rate limit counts per key
    await next();
  };
}

function isPreflight(ctx: Context): boolean {
  return ctx.method === 'OPTIONS' && ctx.get('Origin') !== '' && ctx.get('Access-Control-Request-Method') !== '';
}
